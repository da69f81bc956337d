package awsfake

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// S3 is a fake Amazon S3 holding objects in memory: PutObject and GetObject, path-style (the SDK uses path-style
// requests for an IP-address endpoint such as the fake's).
type S3 struct {
	mu      sync.Mutex
	buckets map[string]map[string][]byte
}

func newS3() *S3 { return &S3{buckets: map[string]map[string][]byte{}} }

// CreateBucket makes an empty bucket.
func (f *S3) CreateBucket(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets[name] == nil {
		f.buckets[name] = map[string][]byte{}
	}
}

// Put stores an object, creating the bucket if needed.
func (f *S3) Put(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets[bucket] == nil {
		f.buckets[bucket] = map[string][]byte{}
	}
	f.buckets[bucket][key] = slices.Clone(data)
}

// Object returns an object's content.
func (f *S3) Object(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket][key]
	return slices.Clone(b), ok
}

// Keys lists a bucket's keys, sorted.
func (f *S3) Keys(bucket string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.buckets[bucket]))
}

type s3XML struct{}

func (s3XML) writeError(w http.ResponseWriter, e *apiError) {
	type errorBody struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string   `xml:"Code"`
		Message   string   `xml:"Message"`
		RequestID string   `xml:"RequestId"`
	}
	writeXML(w, e.Status, errorBody{Code: e.Code, Message: e.Message, RequestID: newUUID()})
}

func (f *S3) serve(w http.ResponseWriter, r *http.Request, body []byte) *apiError {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" || key == "" {
		return errorf(400, "InvalidRequest", "awsfake: s3 %s %s: only object operations are implemented", r.Method, r.URL.Path)
	}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		return errorf(501, "NotImplemented", "awsfake: aws-chunked uploads are not implemented")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	objects, ok := f.buckets[bucket]
	if !ok {
		return errorf(404, "NoSuchBucket", "The specified bucket does not exist")
	}
	switch r.Method {
	case http.MethodPut:
		objects[key] = slices.Clone(body)
		sum := md5.Sum(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodGet:
		data, ok := objects[key]
		if !ok {
			return errorf(404, "NoSuchKey", "The specified key does not exist.")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return nil
	}
	return errorf(405, "MethodNotAllowed", "awsfake: s3 %s is not implemented", r.Method)
}
