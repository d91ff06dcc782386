package uplink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

type pki struct {
	caPEM                 []byte
	serverCert            tls.Certificate
	clientCert, clientKey []byte
	pool                  *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, []byte) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	sc, sk := leaf("broker", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	serverCert, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck := leaf("cg-test", x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), serverCert: serverCert, clientCert: cc, clientKey: ck, pool: pool}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSWithPinnedCAAndClientCert: ssl:// with the broker's CA pinned and
// a client certificate the broker requires.
func TestTLSWithPinnedCAAndClientCert(t *testing.T) {
	p := newPKI(t)
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{TLS: &tls.Config{
		Certificates: []tls.Certificate{p.serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool, MinVersion: tls.VersionTLS12,
	}})
	ca, cert, key := writeFile(t, "ca.pem", p.caPEM), writeFile(t, "client.pem", p.clientCert), writeFile(t, "client.key", p.clientKey)

	// The fleet side needs a client certificate too.
	f := dialFleetTLS(t, b.URL(), ca, cert, key)
	ch := watch(t, f, "cg-test")
	c := newClient(t, b.URL(), nil, func(o *uplink.Options) { o.CAFile, o.CertFile, o.KeyFile = ca, cert, key })
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")

	// Without the client certificate, and with another CA pinned: no session.
	noCert := newClient(t, b.URL(), nil, func(o *uplink.Options) { o.AgentID, o.CAFile = "cg-nocert", ca })
	stopNoCert := runClient(t, noCert)
	other := newPKI(t)
	wrongCA := newClient(t, b.URL(), nil, func(o *uplink.Options) {
		o.AgentID, o.CAFile, o.CertFile, o.KeyFile = "cg-wrongca", writeFile(t, "other.pem", other.caPEM), cert, key
	})
	stopWrongCA := runClient(t, wrongCA)
	// Both keep failing their attempts; give them a few backoff rounds.
	time.Sleep(300 * time.Millisecond) // nothing to wait on: the test asserts an absence
	stopNoCert()
	stopWrongCA()
	if noCert.Stats().Connects != 0 || wrongCA.Stats().Connects != 0 {
		t.Fatalf("connected without a valid chain: %+v %+v", noCert.Stats(), wrongCA.Stats())
	}
}
