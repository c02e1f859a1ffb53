#!/usr/bin/env python3
"""Test keys and caller tokens for the example stack's jwt_authn filter (envoy/envoy.yaml.in).

  tokens.py keys DIR         DIR/signing-key.pem (RSA 2048) and DIR/jwks.json (its public key, with a
                             kid); existing keys are kept
  tokens.py token DIR --sub CALLER [--team TENANT] [--ttl SECONDS] [--issuer I] [--audience A]
                  [--signing-key PEM]
                             prints an RS256 token with DIR's kid, signed with DIR's key or with PEM
                             (a forgery); --ttl defaults to 3600, a negative one is already expired
  tokens.py forge-key PATH   a fresh RSA key no JWKS knows: what an attacker signs with

Needs PyJWT and cryptography (envoy/setup.sh installs both into <repo>/.venv).
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import time

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm
except ImportError as e:
    sys.exit(f"tokens.py: {e}: run `bash envoy/setup.sh` and use <repo>/.venv/bin/python3")

# What the gateway provider in envoy/envoy.yaml.in accepts.
ISSUER = "triage-example-gateway"
AUDIENCE = "triage"
SIGNING_KEY = "signing-key.pem"
JWKS = "jwks.json"


def write_new_key(path):
    """A new RSA 2048 private key in PEM, readable by its owner only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(pem)


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def public_jwk(key):
    """The public key as a JWK; its kid is the RFC 7638 thumbprint, so a new key gets a new kid."""
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"),
                           sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    jwk["kid"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    jwk["alg"] = "RS256"
    jwk["use"] = "sig"
    return jwk


def keys(args):
    os.makedirs(args.dir, exist_ok=True)
    key_path = os.path.join(args.dir, SIGNING_KEY)
    if not os.path.exists(key_path):
        write_new_key(key_path)
    with open(os.path.join(args.dir, JWKS), "w") as f:
        json.dump({"keys": [public_jwk(load_key(key_path))]}, f, indent=2)
        f.write("\n")


def token(args):
    kid = public_jwk(load_key(os.path.join(args.dir, SIGNING_KEY)))["kid"]
    signing_key = load_key(args.signing_key or os.path.join(args.dir, SIGNING_KEY))
    now = int(time.time())
    claims = {"iss": args.issuer, "aud": args.audience, "sub": args.sub, "iat": now,
              "exp": now + args.ttl}
    if args.team is not None:
        claims["team"] = args.team
    print(jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": kid}))


def forge_key(args):
    write_new_key(args.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True)
    keys_command = commands.add_parser("keys", help="create DIR's signing key and JWKS")
    keys_command.add_argument("dir")
    keys_command.set_defaults(run=keys)
    token_command = commands.add_parser("token", help="print a token signed with DIR's key")
    token_command.add_argument("dir")
    token_command.add_argument("--sub", required=True, help="the caller")
    token_command.add_argument("--team", help="the caller's tenant")
    token_command.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token_command.add_argument("--issuer", default=ISSUER)
    token_command.add_argument("--audience", default=AUDIENCE)
    token_command.add_argument("--signing-key", help="sign with this PEM instead of DIR's key")
    token_command.set_defaults(run=token)
    forge_command = commands.add_parser("forge-key", help="write an unrelated RSA key to PATH")
    forge_command.add_argument("path")
    forge_command.set_defaults(run=forge_key)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
