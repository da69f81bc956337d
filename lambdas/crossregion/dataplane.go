package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// PublishInput is one message for the data plane's Publish API (POST /topics/{topic}).
type PublishInput struct {
	Topic          string
	Payload        []byte
	QoS            int
	UserProperties [][2]string
}

// DataPlane publishes through the AWS IoT data plane's HTTPS Publish API, signed with SigV4 (signing name
// "iotdata"). It keeps the function on the SDK modules the app already uses; the wire format is the one the
// iotdataplane client sends.
type DataPlane struct {
	Endpoint    string // e.g. https://data-ats.iot.us-east-1.amazonaws.com
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        aws.HTTPClient
	Signer      *v4.Signer
	// Attempts of one Publish on throttling, 5xx and network errors. Default 3.
	Attempts int
	// Backoff before the second attempt, doubled after each. Default 100 ms.
	Backoff time.Duration
}

// PublishError is an error answer of the data plane.
type PublishError struct {
	Status  int
	Code    string
	Message string
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("iot-data publish: %d %s: %s", e.Status, e.Code, e.Message)
}

func (e *PublishError) retryable() bool { return e.Status == 429 || e.Status >= 500 }

// Publish sends one message, retrying throttling and server errors.
func (d *DataPlane) Publish(ctx context.Context, in PublishInput) error {
	attempts, backoff := d.Attempts, d.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	var err error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
			case <-t.C:
			}
			backoff *= 2
		}
		err = d.publishOnce(ctx, in)
		var pe *PublishError
		if err == nil || (errors.As(err, &pe) && !pe.retryable()) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (d *DataPlane) publishOnce(ctx context.Context, in PublishInput) error {
	// The topic is one path label: every reserved character, '/' included, is percent-encoded.
	raw := strings.TrimRight(d.Endpoint, "/") + "/topics/" + httpbinding.EscapePath(in.Topic, true) +
		"?" + url.Values{"qos": {strconv.Itoa(in.QoS)}}.Encode()
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("iot-data endpoint %q: %w", d.Endpoint, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(in.Payload))
	if err != nil {
		return fmt.Errorf("iot-data request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if len(in.UserProperties) > 0 {
		props := make([]map[string]string, len(in.UserProperties))
		for i, p := range in.UserProperties {
			props[i] = map[string]string{p[0]: p[1]}
		}
		b, err := json.Marshal(props)
		if err != nil {
			return fmt.Errorf("encode user properties: %w", err)
		}
		req.Header.Set("X-Amz-Mqtt5-User-Properties", base64.StdEncoding.EncodeToString(b))
	}
	creds, err := d.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	sum := sha256.Sum256(in.Payload)
	if err := d.Signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iotdata", d.Region, time.Now()); err != nil {
		return fmt.Errorf("sign iot-data request: %w", err)
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("iot-data publish to %q: %w", in.Topic, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	pe := &PublishError{Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-ErrorType")}
	var msg struct {
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	if json.Unmarshal(body, &msg) == nil {
		pe.Message = msg.Message + msg.Message2
	}
	if i := strings.IndexByte(pe.Code, ':'); i >= 0 {
		pe.Code = pe.Code[:i]
	}
	if pe.Code == "" {
		pe.Code = http.StatusText(resp.StatusCode)
	}
	return pe
}
