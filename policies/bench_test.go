package policies

import "testing"

// The stack checks the policy document at synth time: these stay in microseconds.

func BenchmarkCheckDefault(b *testing.B) {
	doc := DefaultThingPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Check(doc, CheckOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckRejected(b *testing.B) {
	doc := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:*"],"Resource":["*"]}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Check(doc, CheckOptions{}); err == nil {
			b.Fatal("accepted iot:*")
		}
	}
}

func BenchmarkRender(b *testing.B) {
	doc := DefaultThingPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(doc, "aws", "us-east-2", "123456789012"); err != nil {
			b.Fatal(err)
		}
	}
}
