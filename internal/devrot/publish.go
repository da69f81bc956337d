package devrot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// Publisher sends one message to a device topic.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// DataPlane publishes through the AWS IoT data plane's HTTPS Publish API (POST /topics/{topic}?qos=1, SigV4 with
// signing name "iotdata"; https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_Publish.html). A failed
// answer is an error; the function's invocation retries it.
type DataPlane struct {
	Endpoint    string // https://<prefix>-ats.iot.<region>.amazonaws.com, or AWS_ENDPOINT_URL_IOT_DATA_PLANE
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        *http.Client
}

// Publish sends payload to topic with QoS 1.
func (d *DataPlane) Publish(ctx context.Context, topic string, payload []byte) error {
	u := strings.TrimRight(d.Endpoint, "/") + "/topics/" + httpbinding.EscapePath(topic, true) + "?qos=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("iot-data request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := d.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	sum := sha256.Sum256(payload)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iotdata", d.Region, time.Now()); err != nil {
		return fmt.Errorf("sign iot-data request: %w", err)
	}
	c := d.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish to %s: %d %s", topic, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func publishJSON(ctx context.Context, p Publisher, topic string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message for %s: %w", topic, err)
	}
	return p.Publish(ctx, topic, payload)
}
