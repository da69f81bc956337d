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

// One question to the evaluator: may thing sensor-1 publish on its own topic under the shipped default policy?
func BenchmarkEvaluate(b *testing.B) {
	doc, err := Render(DefaultThingPolicy(), "aws", ProbeRegion, ProbeAccount)
	if err != nil {
		b.Fatal(err)
	}
	d, err := Parse(doc)
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Principal: DevicePrincipal("sensor-1"), Action: "iot:Publish", Resource: probeARNPrefix + "topic/things/sensor-1/temp"}
	b.ReportAllocs()
	for b.Loop() {
		if dec, err := d.Evaluate(req); err != nil || !dec.Allowed {
			b.Fatal(dec, err)
		}
	}
}

// The whole audit of each shipped policy for one device: what Check and policy-check -audit cost.
func BenchmarkAuditDevice(b *testing.B) {
	for _, p := range []struct {
		name string
		doc  []byte
	}{{"thing-default", thingDefault}, {"jitr-mr-policy", jitrMultiRegion}, {"vending-device", vendingDevice}} {
		d, err := Parse(p.doc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if f, err := AuditDevice(d, CheckThing); err != nil || len(f) != 0 {
					b.Fatal(f, err)
				}
			}
		})
	}
}
