package container

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"
)

// Keys are the ssh keys the harness holds for the users of its job hosts:
// one ed25519 key per user, the private half in a file an OpenSSH client
// can use (IdentityFile), the public half authorized on the hosts. One Keys
// may serve many containers (a cluster's nodes share it).
type Keys struct {
	dir   string
	owned bool

	mu    sync.Mutex
	files map[string]string
	pubs  map[string]string
}

// NewKeys returns an empty key set whose files go to dir ("" for a new
// temporary directory, removed by Close).
func NewKeys(dir string) (*Keys, error) {
	k := &Keys{dir: dir, files: map[string]string{}, pubs: map[string]string{}}
	if dir == "" {
		d, err := os.MkdirTemp("", "jobsim-keys-")
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		k.dir, k.owned = d, true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return k, nil
}

// Ensure creates keys for users that have none yet.
func (k *Keys) Ensure(users ...string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, u := range users {
		if _, ok := k.files[u]; ok {
			continue
		}
		if strings.ContainsAny(u, "/ \t\n") || u == "" {
			return fmt.Errorf("keys: bad user name %q", u)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		signer, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		block, err := gossh.MarshalPrivateKey(priv, "jobsim "+u)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		file := filepath.Join(k.dir, "id_ed25519_"+u)
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		k.files[u] = file
		k.pubs[u] = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	}
	return nil
}

// File is the private key file of user.
func (k *Keys) File(user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, ok := k.files[user]
	if !ok {
		return "", fmt.Errorf("no key for user %q", user)
	}
	return f, nil
}

// authorized returns the authorized_keys lines of users.
func (k *Keys) authorized(users []string) map[string][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string][]string{}
	for _, u := range users {
		if p, ok := k.pubs[u]; ok {
			out[u] = []string{p}
		}
	}
	return out
}

// Dir is where the key files are.
func (k *Keys) Dir() string { return k.dir }

// Close removes the key files when the directory was made by NewKeys.
func (k *Keys) Close() error {
	if !k.owned {
		return nil
	}
	return os.RemoveAll(k.dir)
}
