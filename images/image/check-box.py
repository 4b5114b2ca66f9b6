#!/usr/bin/env python3
"""Signs in to a freshly booted Lanterne box as its first administrator, as a tablet would.

Used by scripts/test-image.sh against the image booted under qemu-system-aarch64:

    check-box.py sign-in  URL CA_FILE FIRST_PASSWORD NEW_PASSWORD STATE_FILE
    check-box.py tile     URL CA_FILE STATE_FILE STATION_NAME TIMEOUT_S

`sign-in` signs in with the generated first password, replaces it (the box demands it), signs
in again with the new one and sets up two-factor login (the shipped configuration requires it
for administrators: the code is computed here from the secret the box gives, as an
authenticator app would), then checks that the room answers. The session cookie is kept in
STATE_FILE. `tile` waits until the room's mosaic has a tile for STATION_NAME that is online.
Every step prints one "ok" or "FAIL" line; the exit status is non-zero on the first failure.
"""

import base64
import hashlib
import hmac
import json
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class Box:
    def __init__(self, url, ca_file):
        self.url = url.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.cookie = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        # Same-origin requests, as the box's own page makes them.
        req.add_header("Origin", self.url)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.cookie:
            req.add_header("Cookie", self.cookie)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as res:
                status, headers, raw = res.status, res.headers, res.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read()
        cookie = headers.get("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, payload


def step(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        sys.exit(1)


def totp(secret_b32, at=None):
    """RFC 6238 with the parameters every authenticator app uses: SHA-1, 6 digits, 30 s."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def sign_in(url, ca, first, new, state_file):
    box = Box(url, ca)
    status, page = box.call("GET", "/login")
    step(status == 200 and 'type="password"' in str(page), "the login page comes over HTTPS, trusted through the box's CA")

    status, body = box.call("POST", "/api/login", {"username": "admin", "password": "not-the-password"})
    step(status == 401, "a wrong password is refused", f"{status} {body}")

    status, body = box.call("POST", "/api/login", {"username": "admin", "password": first})
    step(status == 200 and body.get("password_change_required") is True,
         "admin signs in with the first-boot password, which must be replaced", f"{status} {body}")
    status, body = box.call("GET", "/api/room")
    step(status == 403, "nothing else is open before the password is replaced", f"{status} {body}")
    status, body = box.call("POST", "/api/account/password", {"current_password": first, "new_password": new})
    step(status == 204, "the first password is replaced", f"{status} {body}")

    box.cookie = None
    status, body = box.call("POST", "/api/login", {"username": "admin", "password": first})
    step(status == 401, "the first password no longer opens the box", f"{status} {body}")
    status, body = box.call("POST", "/api/login", {"username": "admin", "password": new})
    step(status == 200, "admin signs in with the new password", f"{status} {body}")
    if body.get("totp_setup_required"):
        status, body = box.call("POST", "/api/account/totp/setup")
        step(status == 200 and "secret=" in body.get("otpauth_uri", ""), "two-factor setup starts", f"{status} {body}")
        query = urllib.parse.urlparse(body["otpauth_uri"]).query
        secret = urllib.parse.parse_qs(query)["secret"][0]
        status, body = box.call("POST", "/api/account/totp/confirm", {"code": totp(secret)})
        step(status == 200 and len(body.get("recovery_codes", [])) > 0,
             "two-factor login is confirmed with an authenticator code", f"{status} {body}")
    status, body = box.call("GET", "/api/room")
    step(status == 200 and "mosaic" in body, "the room answers the signed-in administrator", f"{status} {body}")
    with open(state_file, "w") as f:
        json.dump({"cookie": box.cookie}, f)


def tile(url, ca, state_file, name, timeout_s):
    box = Box(url, ca)
    with open(state_file) as f:
        box.cookie = json.load(f)["cookie"]
    deadline = time.monotonic() + float(timeout_s)
    last = None
    while time.monotonic() < deadline:
        status, body = box.call("GET", "/api/room")
        step(status == 200, "the room answers", f"{status} {body}")
        tiles = body["mosaic"]["tiles"]
        last = tiles
        if any(t["name"] == name and t["online"] for t in tiles):
            step(True, f"the mosaic has an online tile for {name} ({len(tiles)} tile(s))")
            return
        # The room view changes when the station's link comes up: ask again shortly.
        time.sleep(0.5)
    step(False, f"the mosaic has an online tile for {name}", f"tiles: {last}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sign-in" and len(args) == 5:
        sign_in(*args)
    elif cmd == "tile" and len(args) == 5:
        tile(*args)
    else:
        sys.exit(__doc__)
