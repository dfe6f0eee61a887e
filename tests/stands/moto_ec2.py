"""moto's EC2 server on 127.0.0.1, made to follow two EC2 rules that moto does not.

1. ClientToken: moto stores it but launches again when it sees the same one; EC2 returns
   the first call's reservation and launches nothing. Burst's crash-safety rests on that
   rule (a rerun after a crash between the call and its reply must not launch twice).
2. MinCount / MaxCount: moto launches MinCount instances; EC2 launches as many as it has
   capacity for, up to MaxCount, and fails only below MinCount. burst asks MinCount=1,
   MaxCount=N so a short zone yields a partial batch.

Both are added in front of moto, at the HTTP level, so every client and every process
that talks to the server sees them. On top: a capacity knob per zone / instance type
(`set_capacity`) that makes a short zone (partial batch) or an empty one (EC2's real
InsufficientInstanceCapacity error body), a record of each API call (action name
only) so tests and benchmarks count what EC2 would have received, a record of each
RunInstances answered (`launches`: ClientToken, zone, type, instance ids, replayed or
not), and a reply delay (`delay_next_reply`): the launch is done, then the answer is
held back, so a test can kill the caller between the cloud call and its reply.

Start it with `MotoEc2Server().start()`; `reset()` between tests.
"""

from __future__ import annotations

import io
import re
import threading
import urllib.request
import uuid
from urllib.parse import parse_qs, urlencode

from werkzeug.serving import WSGIRequestHandler, make_server

from stands.loopback import LoopbackServer


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per call drowns test output
        pass


class _ClientTokenMiddleware:
    def __init__(self, app, server: "MotoEc2Server"):
        self.app = app
        self.server = server

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO") == "/moto-api/reset":
            self.server._forget()
            return self.app(environ, start_response)
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action", "")
        if action:
            self.server._record(action)
        token = params.get("ClientToken")
        if action != "RunInstances" or not token:
            return self.app(environ, start_response)
        with self.server._run_lock:  # one RunInstances at a time: a token is never used twice
            stored = self.server._tokens.get(token)
            replayed = stored is not None
            if stored is None:
                stored = self._launch(params, environ)
                if stored[0].startswith("200"):
                    self.server._tokens[token] = stored
        status, headers, payload = stored
        self.server._record_launch(params, status, payload, replayed)
        self.server._hold_reply("RunInstances")
        start_response(status, headers)
        return [payload]

    def _launch(self, params: dict, environ) -> tuple:
        """Launch up to MaxCount within the capacity left, as EC2 does."""
        wanted = int(params.get("MaxCount", params.get("MinCount", "1")))
        least = int(params.get("MinCount", "1"))
        zone = params.get("Placement.AvailabilityZone", "")
        count = self.server._take_capacity(zone, params.get("InstanceType", ""), wanted, least)
        if count == 0:
            return _capacity_error(params.get("InstanceType", ""), zone)
        body = urlencode({**params, "MinCount": str(count), "MaxCount": str(count)}).encode()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, capture)
        try:
            payload = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return (captured["status"], captured["headers"], payload)


def _capacity_error(instance_type: str, zone: str) -> tuple:
    """EC2's own error body for a stock-out (the real botocore parser reads it)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        "<Code>InsufficientInstanceCapacity</Code>"
        f"<Message>We currently do not have sufficient {instance_type} capacity in the Availability Zone "
        f"you requested ({zone}).</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
    return ("400 Bad Request", [("Content-Type", "text/xml")], body)


def ec2_error_response(url: str, code: str, message: str, status: int = 400):
    """A botocore response carrying EC2's own error XML, for a `before-send.ec2.<Operation>`
    hook to return: the real parser and the provider's error map then run on it."""
    from botocore.awsrequest import AWSResponse

    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>injected</RequestID></Response>").encode()

    class Raw:
        def stream(self, **kwargs):
            yield body

    return AWSResponse(url, status, {"Content-Type": "text/xml"}, Raw())


class MotoEc2Server(LoopbackServer):
    """A moto server (all of moto's services) with EC2's ClientToken and MaxCount rules."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__()
        self.host, self.port = host, port
        self.calls: list[str] = []
        self._tokens: dict[str, tuple] = {}
        self._capacity: dict[tuple[str | None, str | None], int] = {}
        self._amis: dict[str, str] = {}
        #: one record per RunInstances answered (see _record_launch)
        self.launches: list[dict] = []
        self._delays: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    def start(self) -> "MotoEc2Server":
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = _ClientTokenMiddleware(DomainDispatcherApplication(create_backend_app), self)
        return self._serve(make_server(self.host, self.port, app, threaded=True, request_handler=_QuietHandler),
                           "moto-ec2")

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource (moto's own reset) and every token and call."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def network(self, region: str, zones: list[str]) -> tuple[str, dict[str, str]]:
        """A VPC with one subnet per zone, and one of moto's default AMIs: (ami, {zone: subnet})."""
        import boto3

        ec2 = boto3.client("ec2", region_name=region, endpoint_url=self.endpoint_url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = {
            zone: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{16 * n}.0/20", AvailabilityZone=zone)["Subnet"]["SubnetId"]
            for n, zone in enumerate(zones)
        }
        if region not in self._amis:  # moto's default AMIs survive a reset; listing them is slow
            self._amis[region] = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        return self._amis[region], subnets

    def provider_options(self, region: str, ami: str, subnets: dict[str, str], instance_types: list[dict], **extra) -> dict:
        """Options for burst's aws provider pointed at this server."""
        return {
            "region": region,
            "endpoint_url": self.endpoint_url,
            "image_id": ami,
            "subnet_by_zone": subnets,
            "instance_types": instance_types,
            **extra,
        }

    def require_auth(self, enabled: bool) -> None:
        """Check every request's credentials (moto's IAM auth: an access key moto never
        issued gets EC2's real AuthFailure), or accept any again. Process-wide in moto."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset-auth", data=b"0" if enabled else b"inf",
                                     method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def set_capacity(self, count: int | None, *, zone: str | None = None, instance_type: str | None = None) -> None:
        """Instances left for this zone and/or type (None = any); count None removes the
        limit. A launch takes what is left (a partial batch) and 0 left is a stock-out."""
        with self._lock:
            if count is None:
                self._capacity.pop((zone, instance_type), None)
            else:
                self._capacity[(zone, instance_type)] = count

    def _take_capacity(self, zone: str, instance_type: str, wanted: int, least: int) -> int:
        with self._lock:
            keys = [k for k in ((zone, instance_type), (zone, None), (None, instance_type)) if k in self._capacity]
            left = min([self._capacity[k] for k in keys], default=wanted)
            count = min(wanted, left)
            if count < least:
                return 0
            for k in keys:
                self._capacity[k] -= count
            return count

    def delay_next_reply(self, seconds: float, *, action: str = "RunInstances", n: int = 1) -> None:
        """The next n calls of `action` are carried out, then answered `seconds` late
        (a reply lost in flight, as far as a killed caller can tell). Only
        RunInstances is held for now."""
        with self._lock:
            self._released.clear()
            self._delays += [(action, seconds)] * n

    def _hold_reply(self, action: str) -> None:
        with self._lock:
            index = next((i for i, (a, _) in enumerate(self._delays) if a == action), None)
            seconds = self._delays.pop(index)[1] if index is not None else 0.0
        if seconds:
            self._released.wait(seconds)

    def _record_launch(self, params: dict, status: str, payload: bytes, replayed: bool) -> None:
        ids = re.findall(rb"<instanceId>(i-[0-9a-f]+)</instanceId>", payload) if status.startswith("200") else []
        with self._lock:
            self.launches.append({
                "client_token": params.get("ClientToken", ""),
                "zone": params.get("Placement.AvailabilityZone", ""),
                "instance_type": params.get("InstanceType", ""),
                "max_count": int(params.get("MaxCount", "0") or 0),
                "instance_ids": [i.decode() for i in ids],
                "replayed": replayed,
                "status": int(status.split()[0]),
            })

    def count(self, action: str) -> int:
        with self._lock:
            return self.calls.count(action)

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def _record(self, action: str) -> None:
        with self._lock:
            self.calls.append(action)

    def _forget(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._capacity.clear()
            self.calls.clear()
            self.launches.clear()
            self._delays.clear()
        self._released.set()

