package sim

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// userKey is the key pair the harness holds for one host user: its public
// half is authorized on the host, its private half is written to a file an
// OpenSSH client can use with -i / IdentityFile when one is first asked for.
type userKey struct {
	signer gossh.Signer
	pem    []byte
}

func newUserKey(user string) (userKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return userKey{}, fmt.Errorf("key for %s: %w", user, err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return userKey{}, fmt.Errorf("key for %s: %w", user, err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "jobsim "+user)
	if err != nil {
		return userKey{}, fmt.Errorf("key for %s: %w", user, err)
	}
	return userKey{signer: signer, pem: pem.EncodeToMemory(block)}, nil
}

// writeKey writes the private key (and its .pub) into dir.
func writeKey(dir, user string, k userKey) (string, error) {
	file := filepath.Join(dir, "id_ed25519_"+user)
	if err := os.WriteFile(file, k.pem, 0o600); err != nil {
		return "", fmt.Errorf("key for %s: %w", user, err)
	}
	if err := os.WriteFile(file+".pub", gossh.MarshalAuthorizedKey(k.signer.PublicKey()), 0o644); err != nil {
		return "", fmt.Errorf("key for %s: %w", user, err)
	}
	return file, nil
}
