"""Writes pyjwt.json: keys and tokens from an independent JOSE implementation (PyJWT and
cryptography), which src/edge/auth/jwt.rs must verify. Run: python3 pyjwt.py > pyjwt.json
(needs `pip install pyjwt cryptography`). Private keys are thrown away."""
import json
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

keys = {
    "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec-256": ec.generate_private_key(ec.SECP256R1()),
    "ec-384": ec.generate_private_key(ec.SECP384R1()),
    "ed-1": ed25519.Ed25519PrivateKey.generate(),
}
to_jwk = {"rsa-1": RSAAlgorithm, "ec-256": ECAlgorithm, "ec-384": ECAlgorithm, "ed-1": OKPAlgorithm}
jwks = {"keys": []}
for kid, key in keys.items():
    jwk = json.loads(to_jwk[kid].to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig"})
    jwks["keys"].append(jwk)
# Keys a validator must skip, not choke on: a symmetric key and an encryption key.
jwks["keys"].append({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
enc = json.loads(RSAAlgorithm.to_jwk(keys["rsa-1"].public_key()))
enc.update({"kid": "enc-1", "use": "enc", "alg": "RSA-OAEP"})
jwks["keys"].append(enc)

claims = {"iss": "https://idp.example.com", "aud": ["kafka-edge", "other"], "sub": "alice",
          "preferred_username": "alice.a", "iat": 1767225600, "exp": 1767229200}
tokens = {}
for alg, kid in [("RS256", "rsa-1"), ("RS384", "rsa-1"), ("RS512", "rsa-1"), ("PS256", "rsa-1"),
                 ("PS384", "rsa-1"), ("PS512", "rsa-1"), ("ES256", "ec-256"), ("ES384", "ec-384"),
                 ("EdDSA", "ed-1")]:
    tokens[alg] = jwt.encode(claims, keys[kid], algorithm=alg, headers={"kid": kid})
pem = lambda kid: keys[kid].public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
print(json.dumps({"generated_by": f"PyJWT {jwt.__version__}", "claims": claims, "jwks": jwks,
                  "pem": {kid: pem(kid) for kid in keys}, "tokens": tokens}, indent=1))
