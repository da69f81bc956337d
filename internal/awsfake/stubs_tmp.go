package awsfake

import "net/http"

type PCA struct{}
type StepFunctions struct{}
type EventBridge struct{}
type SNS struct{}

const snsXMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"

func newPCA() *PCA                                { return &PCA{} }
func newStepFunctions() *StepFunctions            { return &StepFunctions{} }
func newEventBridge() *EventBridge                { return &EventBridge{} }
func newSNS() *SNS                                { return &SNS{} }
func (*PCA) handler(string) jsonHandler           { return nil }
func (*StepFunctions) handler(string) jsonHandler { return nil }
func (*EventBridge) handler(string) jsonHandler   { return nil }
func (*SNS) serve(_ http.ResponseWriter, _ *http.Request, op string) *apiError {
	return errorf(400, "InvalidAction", "awsfake: sns action %s is not implemented", op)
}
