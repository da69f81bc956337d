package devrot

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsconfig"
)

// maxBackoff between SDK retries: an IoT rule invokes the functions asynchronously, and Lambda retries a failed
// invocation twice.
const maxBackoff = 2 * time.Second

// clients is what both functions build once per process from the environment.
type clients struct {
	iot    IoTAPI
	pca    PCAAPI
	store  *Store
	pub    Publisher
	config Config
}

func newClients(ctx context.Context) (clients, error) {
	conf, endpoint, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return clients{}, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return clients{}, err
	}
	return clients{
		iot: iot.NewFromConfig(cfg), pca: acmpca.NewFromConfig(cfg), config: conf,
		store: &Store{DB: dynamodb.NewFromConfig(cfg), Table: conf.Table},
		pub:   &DataPlane{Endpoint: endpoint, Region: cfg.Region, Credentials: cfg.Credentials},
	}, nil
}

// NewSigner builds the signer from the environment (ConfigFromEnv) and the default AWS configuration.
func NewSigner(ctx context.Context) (*Signer, error) {
	c, err := newClients(ctx)
	if err != nil {
		return nil, err
	}
	return &Signer{IoT: c.iot, PCA: c.pca, Store: c.store, Publisher: c.pub, Config: c.config}, nil
}

// NewCompletion builds the completion function from the environment and the default AWS configuration.
func NewCompletion(ctx context.Context) (*Completion, error) {
	c, err := newClients(ctx)
	if err != nil {
		return nil, err
	}
	return &Completion{IoT: c.iot, PCA: c.pca, Store: c.store, Publisher: c.pub, Config: c.config}, nil
}
