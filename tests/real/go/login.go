package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// login is how franz-go authenticates (the -sasl flags); the zero value is no login.
// Secrets come from files, so they appear on no command line.
type login struct {
	mechanism    string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER
	user         string
	passwordFile string
	tokenFile    string // OAUTHBEARER: the JWT, re-read at every login
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// franzOpts are the client options of the login.
func (l login) franzOpts() ([]kgo.Opt, error) {
	var m sasl.Mechanism
	switch l.mechanism {
	case "":
		return nil, nil
	case "OAUTHBEARER":
		m = oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			token, err := readSecret(l.tokenFile)
			return oauth.Auth{Token: token}, err
		})
	default:
		password, err := readSecret(l.passwordFile)
		if err != nil {
			return nil, err
		}
		switch l.mechanism {
		case "PLAIN":
			m = plain.Auth{User: l.user, Pass: password}.AsMechanism()
		case "SCRAM-SHA-256":
			m = scram.Auth{User: l.user, Pass: password}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: l.user, Pass: password}.AsSha512Mechanism()
		default:
			return nil, fmt.Errorf("unknown SASL mechanism %q", l.mechanism)
		}
	}
	return []kgo.Opt{kgo.SASL(m)}, nil
}
