package auth

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"testing"
)

// Asking what a reader may see is not a failed login: a console polling
// every path with a reader's credentials must not get the reader
// throttled, while a wrong password still counts.
func TestPermitsCountsOnlyWrongPasswords(t *testing.T) {
	a, err := New([]User{
		{Name: "any", Permissions: []Permission{{Action: ActionRead, Path: "lobby"}}},
		{Name: "ops", Pass: "s3cret", Permissions: []Permission{{Action: ActionRead, Path: "~^cam"}}},
		{Name: "admin", Pass: "other", Permissions: []Permission{{Action: ActionRead}, {Action: ActionAPI}}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ip := net.ParseIP("192.0.2.7")
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		for _, c := range []struct {
			r    Request
			want bool
		}{
			{Request{Action: ActionRead, Path: "lobby", IP: ip}, true},
			{Request{Action: ActionRead, Path: "vault", IP: ip}, false},
			{Request{Action: ActionRead, Path: "cam1", IP: ip, User: "ops", Pass: "s3cret"}, true},
			{Request{Action: ActionRead, Path: "vault", IP: ip, User: "ops", Pass: "s3cret"}, false},
			{Request{Action: ActionAPI, IP: ip, User: "ops", Pass: "s3cret"}, false},
		} {
			ok, err := a.Permits(ctx, c.r)
			if ok != c.want || err != nil {
				t.Fatalf("round %d: Permits(%+v) = %v, %v; want %v", i, c.r, ok, err, c.want)
			}
		}
	}
	if err := a.CheckContext(ctx, Request{Action: ActionRead, Path: "cam1", IP: ip, User: "ops", Pass: "s3cret"}); err != nil {
		t.Fatalf("the reader was throttled by what it was shown: %v", err)
	}
	if ok, err := a.Permits(ctx, Request{Action: ActionRead, Path: "cam1", IP: ip, User: "ops", Pass: "wrong"}); ok || !errors.Is(err, ErrDenied) {
		t.Fatalf("wrong password: %v, %v", ok, err)
	}
	if st := a.Stats(); st.Denied != 1 {
		t.Errorf("denied = %d, want 1 (the wrong password only)", st.Denied)
	}
}

func TestHTTPRequest(t *testing.T) {
	for _, c := range []struct{ header, user, pass string }{
		{"Basic b3BzOnMzY3JldA==", "ops", "s3cret"},
		{"Bearer ops:s3cret", "ops", "s3cret"},
		{"Bearer b3BzOnMzY3JldA==", "ops", "s3cret"},
		{"Digest username=ops", "", ""},
		{"", "", ""},
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.RemoteAddr = "192.0.2.9:5000"
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		req := HTTPRequest(r, ActionRead, "cam", "hls")
		if req.User != c.user || req.Pass != c.pass || !req.IP.Equal(net.ParseIP("192.0.2.9")) || req.Proto != "hls" || req.Path != "cam" {
			t.Errorf("%q: %+v", c.header, req)
		}
	}
}
