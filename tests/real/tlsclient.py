#!/usr/bin/env python3
"""kclient.py's confluent-kafka operations with extra client settings.

    tlsclient.py [-X KEY=VALUE ...] confluent --bootstrap HOST:PORT COMMAND ...

Every `-X KEY=VALUE` (before or after the kclient arguments) is added to the
configuration of every confluent-kafka client kclient.py creates: the TLS
settings (security.protocol=SSL, ssl.ca.location, ssl.certificate.location,
ssl.key.location) and the SASL ones (sasl.mechanism, sasl.username, ...).
Everything else, including the JSON output and exit codes, is kclient.py's
(see its docstring); this file only injects the settings, so the operations
and their checks stay in one place.

One setting is not librdkafka's: `-X oauth.token.file=PATH` logs in with
OAUTHBEARER using the JWT in PATH (read at every token refresh), through
confluent-kafka's `oauth_cb`, as an application holding a token from its
identity provider does.
"""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kclient  # noqa: E402


def split_settings(argv):
    """(extra settings, remaining argv) from a command line with -X KEY=VALUE pairs."""
    extra, rest = {}, []
    i = 0
    while i < len(argv):
        if argv[i] == "-X":
            if i + 1 >= len(argv) or "=" not in argv[i + 1]:
                raise SystemExit("tlsclient.py: -X needs KEY=VALUE")
            key, value = argv[i + 1].split("=", 1)
            extra[key] = value
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    return extra, rest


def token_callback(path):
    """An oauth_cb giving the JWT in `path` and its `exp` (librdkafka refreshes before it)."""

    def callback(_config):
        with open(path) as f:
            token = f.read().strip()
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return token, float(claims["exp"])

    return callback


def main():
    extra, rest = split_settings(sys.argv[1:])
    token_file = extra.pop("oauth.token.file", None)
    if token_file:
        extra["oauth_cb"] = token_callback(token_file)
    if not rest or rest[0] != "confluent":
        raise SystemExit("tlsclient.py: only the confluent client takes extra settings")
    plain_init = kclient.Confluent.__init__

    def init(self, args):
        plain_init(self, args)
        self.base.update(extra)

    kclient.Confluent.__init__ = init
    sys.argv = [sys.argv[0]] + rest
    kclient.main()


if __name__ == "__main__":
    main()
