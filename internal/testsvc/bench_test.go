package testsvc

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkDynamoDBStart measures starting DynamoDB Local until it answers ListTables, then stops it (untimed).
// Each iteration takes seconds: run it with -benchtime=3x.
func BenchmarkDynamoDBStart(b *testing.B) {
	java, err := exec.LookPath("java")
	if err != nil {
		Require(b, "java", javaHint)
	}
	jar, err := dynamoDBJar()
	if err != nil {
		Require(b, "DynamoDB Local", dynamoDBJarHint)
	}
	for b.Loop() {
		p, _, dir, err := startDynamoDB(java, jar)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p.stop(0)
		_ = os.RemoveAll(dir)
		b.StartTimer()
	}
}

// BenchmarkMosquittoStart measures Mosquitto: certificates, config, start and the wait for a TLS listener; stopping
// the broker is untimed.
func BenchmarkMosquittoStart(b *testing.B) {
	ca, err := newTestCA("bench client CA")
	if err != nil {
		b.Fatal(err)
	}
	opts := MosquittoOptions{ClientCAPEM: ca.pem}
	for b.Loop() {
		broker := Mosquitto(b, opts)
		b.StopTimer()
		broker.proc.stop(5 * time.Second)
		b.StartTimer()
	}
}
