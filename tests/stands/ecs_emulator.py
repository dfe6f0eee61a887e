"""An Aliyun ECS emulator: a real HTTP server that the real aliyun-python-sdk-ecs (V1) talks to.

No ECS emulator exists anywhere, so burst ships its own. It answers the actions the
aliyun provider uses with the API's real shapes and limits:

- RunInstances: Amount 1..100, MinAmount (a short zone gives what it has, fewer than
  MinAmount is `OperationDenied.NoStock`), ClientToken idempotency (the same token gives
  the same instances and creates none), Tag.N.Key/Value.
  -> {"RequestId", "InstanceIdSets": {"InstanceIdSet": [...]}}
- DescribeInstances: InstanceIds (a JSON array of <= 100), Tag.N filters, Status,
  ZoneId, MaxResults (<= 100, default 10) with NextToken.
  -> {"RequestId", "TotalCount", "NextToken", "MaxResults", "Instances": {"Instance": [...]}}
- DeleteInstances: InstanceId.N (<= 100), Force (a non-Stopped instance needs it, else
  `IncorrectInstanceStatus`), ClientToken; an unknown id fails the whole call with
  `InvalidInstanceId.NotFound`, as ECS does.
- DescribeRegions: the emulated region -> {"RequestId", "Regions": {"Region": [...]}}.
- Errors: HTTP 4xx / 5xx with {"RequestId", "HostId", "Code", "Message"}.
- Status: Pending -> Starting -> Running after configurable delays; a deleted instance
  shows Stopping for `delete_seconds`, then disappears.

Faults on demand, from Python (`set_stock`, `throttle_next`, `throttle_rate`,
`fail_next`, `delay_next_reply`: the call is carried out and recorded, then its answer
is held back, so a test can kill the caller between the cloud call and its reply) or over HTTP from another process (POST /_emulator/faults with JSON, see
`apply_faults`). Every API call is recorded (action, parameters minus credentials and
signature, resulting error code) for counting. `on_create(instance) -> address` and
`on_delete(instance)` hooks let each instance be backed by a lab host.

Signatures are checked when `access_keys` ({key id: secret}) is given, as ECS does: an
unknown key id is `InvalidAccessKeyId.NotFound`, a request without a signature
`IncompleteSignature`, a wrong secret `SignatureDoesNotMatch`, and for a key listed in
`security_tokens` ({key id: STS token}) a missing or different SecurityToken
`InvalidSecurityToken.Mismatch`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

from burst.provider.pacing import TokenBucket
from stands.loopback import LoopbackServer

API_VERSION = "2014-05-26"
MAX_AMOUNT = 100
MAX_RESULTS = 100
MAX_IDS = 100
#: parameters never recorded (credentials, signature material)
SECRET_PARAMS = {"AccessKeyId", "Signature", "SecurityToken", "SignatureNonce"}


class EcsApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class EmulatedInstance:
    id: str
    region: str
    zone: str
    instance_type: str
    image_id: str
    vswitch_id: str
    security_group_id: str
    tags: dict[str, str]
    created: float  # emulator clock
    creation_time: str  # ECS's own format, UTC: 2024-01-01T12:00Z
    address: str = ""
    instance_name: str = ""
    deleted_at: float | None = None
    data: dict = field(default_factory=dict)  # free for on_create hooks (e.g. the lab host)


@dataclass(frozen=True)
class Call:
    action: str
    params: dict[str, str]
    error: str = ""  # the error code answered, "" for success


class EcsEmulator(LoopbackServer):
    def __init__(
        self,
        *,
        region: str = "cn-hangzhou",
        pending_seconds: float = 0.2,
        starting_seconds: float = 0.3,
        delete_seconds: float = 0.0,
        on_create: Callable[[EmulatedInstance], str | None] | None = None,
        on_delete: Callable[[EmulatedInstance], None] | None = None,
        access_keys: Mapping[str, str] | None = None,
        security_tokens: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.region = region
        self.pending_seconds = pending_seconds
        self.starting_seconds = starting_seconds
        self.delete_seconds = delete_seconds
        self.on_create = on_create
        self.on_delete = on_delete
        self.access_keys = dict(access_keys) if access_keys else None
        self.security_tokens = dict(security_tokens or {})
        self.host, self.port = host, port
        self.clock = clock
        self._lock = threading.RLock()
        super().__init__()
        self.reset()

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "EcsEmulator":
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        return self._serve(server, "ecs-emulator")

    @property
    def endpoint(self) -> str:
        """host:port, for the provider's `endpoint` option (with scheme "http")."""
        return f"{self.host}:{self.port}"

    def provider_options(self, zones: list[str], instance_types: list[dict], **extra) -> dict:
        """Options for burst's aliyun provider pointed at this emulator (plain http)."""
        return {
            "region": self.region,
            "endpoint": self.endpoint,
            "scheme": "http",
            "image_id": "aliyun_3_x64_20G_alibase_20240819.vhd",
            "security_group_id": "sg-emulated",
            "vswitch_by_zone": {zone: f"vsw-{zone}" for zone in zones},
            "instance_types": instance_types,
            **extra,
        }

    def reset(self) -> None:
        """Forget every instance, token, fault and call record."""
        self._released.set()
        with self._lock:
            self.instances: dict[str, EmulatedInstance] = {}
            self._run_tokens: dict[str, list[str]] = {}
            self._delete_tokens: set[str] = set()
            self._stock: dict[tuple[str | None, str | None], int] = {}
            self._throttle_next = 0
            self._throttle_actions: set[str] | None = None
            self._rate_buckets: dict[str | None, TokenBucket] = {}
            self._fail_next: list[tuple[str, int, str, str]] = []
            self._delays: list[tuple[str, float]] = []
            self.calls: list[Call] = []
            #: every instance ever created, in order (deleted ones vanish from `instances`)
            self.created: list[EmulatedInstance] = []
            self._ips = itertools.count(10)

    # --- faults ----------------------------------------------------------------------

    def set_stock(self, count: int | None, *, zone: str | None = None, instance_type: str | None = None) -> None:
        """Instances left for this zone and/or type (None = any); None count lifts the
        limit. 0 is a stock-out; a number below a launch's Amount is a partial batch."""
        with self._lock:
            if count is None:
                self._stock.pop((zone, instance_type), None)
            else:
                self._stock[(zone, instance_type)] = count

    def throttle_next(self, n: int, actions: Iterable[str] | None = None) -> None:
        """The next n calls (of these actions, or any) answer `Throttling`."""
        with self._lock:
            self._throttle_next = n
            self._throttle_actions = set(actions) if actions else None

    def throttle_rate(self, burst: float, per_second: float, action: str | None = None) -> None:
        """A server-side bucket for one action (or all): calls beyond it are throttled."""
        with self._lock:
            self._rate_buckets[action] = TokenBucket(burst, per_second, clock=self.clock)

    def fail_next(self, action: str, code: str, message: str = "injected fault", status: int = 400, n: int = 1) -> None:
        """The next n calls of `action` answer this error."""
        with self._lock:
            self._fail_next += [(action, status, code, message)] * n

    def delay_next_reply(self, seconds: float, *, action: str = "RunInstances", n: int = 1) -> None:
        """The next n calls of `action` are carried out and recorded, then answered
        `seconds` late: to the caller, a reply lost in flight if it dies meanwhile."""
        with self._lock:
            self._released.clear()
            self._delays += [(action, seconds)] * n

    def _hold_reply(self, action: str) -> None:
        with self._lock:
            index = next((i for i, (a, _) in enumerate(self._delays) if a == action), None)
            seconds = self._delays.pop(index)[1] if index is not None else 0.0
        if seconds:
            self._released.wait(seconds)

    def apply_faults(self, spec: Mapping) -> None:
        """Faults from JSON (the admin endpoint):
        {"stock": [{"count": 0, "zone": "cn-hangzhou-h", "instance_type": null}],
         "throttle_next": {"n": 3, "actions": ["RunInstances"]},
         "throttle_rate": [{"burst": 5, "per_second": 2, "action": "RunInstances"}],
         "fail_next": [{"action": "DeleteInstances", "code": "InternalError", "status": 500, "n": 1}],
         "delay_next_reply": [{"action": "RunInstances", "seconds": 30, "n": 1}],
         "clear": true}"""
        with self._lock:
            if spec.get("clear"):
                self._stock.clear()
                self._throttle_next = 0
                self._rate_buckets.clear()
                self._fail_next.clear()
                self._delays.clear()
            for s in spec.get("stock", []):
                self.set_stock(s.get("count"), zone=s.get("zone"), instance_type=s.get("instance_type"))
            if "throttle_next" in spec:
                self.throttle_next(spec["throttle_next"]["n"], spec["throttle_next"].get("actions"))
            for r in spec.get("throttle_rate", []):
                self.throttle_rate(r["burst"], r["per_second"], r.get("action"))
            for f in spec.get("fail_next", []):
                self.fail_next(f["action"], f["code"], f.get("message", "injected fault"), f.get("status", 400), f.get("n", 1))
            for d in spec.get("delay_next_reply", []):
                self.delay_next_reply(d["seconds"], action=d.get("action", "RunInstances"), n=d.get("n", 1))

    # --- records and direct access ---------------------------------------------------

    def count(self, action: str, *, errors: bool | None = None) -> int:
        """Calls of `action` received (errors=True: only failed ones, False: only successes)."""
        with self._lock:
            return sum(
                1 for c in self.calls if c.action == action and (errors is None or bool(c.error) == errors)
            )

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def create_instance(self, *, zone: str, instance_type: str = "ecs.g7.large", tags: Mapping[str, str] = ()) -> str:
        """An instance made directly (as another team or the console would), no API call recorded."""
        with self._lock:
            return self._create(zone, instance_type, "img-external", "vsw-external", "sg-external", dict(tags), "")

    def status(self, instance_id: str) -> str | None:
        """The ECS status of an instance, None once it is gone."""
        with self._lock:
            inst = self.instances.get(instance_id)
            return self._status(inst) if inst else None

    # --- the API ---------------------------------------------------------------------

    def handle(self, params: dict[str, str], method: str = "POST") -> tuple[int, dict]:
        """Answer one API call: (HTTP status, JSON body)."""
        action = params.get("Action", "")
        request_id = str(uuid.uuid4()).upper()
        error = ""
        try:
            self._check_common(params, method)
            self._inject_faults(action)
            handler = self.ACTIONS.get(action)
            if handler is None:
                raise EcsApiError(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
            body = handler(self, params)
            status = 200
        except EcsApiError as exc:
            error = exc.code
            status = exc.status
            body = {"Code": exc.code, "Message": exc.message, "HostId": f"ecs.{self.region}.aliyuncs.com"}
        body["RequestId"] = request_id
        recorded = {k: v for k, v in params.items() if k not in SECRET_PARAMS}
        with self._lock:
            self.calls.append(Call(action, recorded, error))
        self._hold_reply(action)
        return status, body

    def _check_common(self, params: dict[str, str], method: str) -> None:
        if params.get("Version") != API_VERSION:
            raise EcsApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params.get("RegionId") and params["RegionId"] != self.region:
            raise EcsApiError(404, "InvalidRegionId.NotFound", "The specified RegionId does not exist.")
        if not params.get("AccessKeyId"):
            raise EcsApiError(400, "MissingAccessKeyId", "AccessKeyId is mandatory for this action.")
        if self.access_keys is not None:
            secret = self.access_keys.get(params["AccessKeyId"])
            if secret is None:
                raise EcsApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
            if not params.get("Signature"):
                raise EcsApiError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
            token = self.security_tokens.get(params["AccessKeyId"])
            if token is not None and params.get("SecurityToken") != token:
                raise EcsApiError(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken mismatch with the AccessKey.")
            expected, to_sign = _signature(params, secret, method)
            if not hmac.compare_digest(params.get("Signature", ""), expected):
                # ECS's own message; the SDK compares the part after ':' with its string to sign
                raise EcsApiError(400, "SignatureDoesNotMatch",
                                  f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}")

    def _inject_faults(self, action: str) -> None:
        with self._lock:
            for i, (fault_action, status, code, message) in enumerate(self._fail_next):
                if fault_action == action:
                    del self._fail_next[i]
                    raise EcsApiError(status, code, message)
            if self._throttle_next > 0 and (self._throttle_actions is None or action in self._throttle_actions):
                self._throttle_next -= 1
                raise EcsApiError(400, "Throttling", "Request was denied due to request throttling.")
            for key in (action, None):
                bucket = self._rate_buckets.get(key)
                if bucket is not None and not bucket.try_acquire():
                    raise EcsApiError(400, "Throttling", "Request was denied due to request throttling.")

    def _run_instances(self, p: dict[str, str]) -> dict:
        for name in ("ImageId", "InstanceType", "SecurityGroupId", "VSwitchId"):
            if not p.get(name):
                raise EcsApiError(400, "MissingParameter", f"The input parameter \"{name}\" that is mandatory for processing this request is not supplied.")
        amount = _int(p, "Amount", 1)
        if not 1 <= amount <= MAX_AMOUNT:
            raise EcsApiError(400, "InvalidParameter.Amount", f"The specified parameter Amount must be 1 to {MAX_AMOUNT}.")
        min_amount = _int(p, "MinAmount", amount)
        if not 1 <= min_amount <= amount:
            raise EcsApiError(400, "InvalidParameter.MinAmount", "The specified parameter MinAmount must be 1 to Amount.")
        zone = p.get("ZoneId") or f"{self.region}-a"
        tags = _tags(p)
        token = p.get("ClientToken")
        with self._lock:
            if token and token in self._run_tokens:
                ids = self._run_tokens[token]
            else:
                count = self._take_stock(zone, p["InstanceType"], amount, min_amount)
                if count == 0:
                    raise EcsApiError(403, "OperationDenied.NoStock", "Sales of this resource are temporarily suspended in the specified region; please try again later.")
                ids = [
                    self._create(zone, p["InstanceType"], p["ImageId"], p["VSwitchId"], p["SecurityGroupId"], tags, p.get("InstanceName", ""))
                    for _ in range(count)
                ]
                if token:
                    self._run_tokens[token] = ids
        return {"InstanceIdSets": {"InstanceIdSet": list(ids)}, "TradePrice": 0.0, "OrderId": ""}

    def _describe_instances(self, p: dict[str, str]) -> dict:
        max_results = _int(p, "MaxResults", 10)
        if not 1 <= max_results <= MAX_RESULTS:
            raise EcsApiError(400, "InvalidParameter.MaxResults", f"The specified parameter MaxResults must be 1 to {MAX_RESULTS}.")
        ids = None
        if p.get("InstanceIds"):
            try:
                ids = json.loads(p["InstanceIds"])
                assert isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            except (ValueError, AssertionError):
                raise EcsApiError(400, "InvalidParameter.InstanceIds", "The specified parameter InstanceIds is not a JSON array of strings.") from None
            if len(ids) > MAX_IDS:
                raise EcsApiError(400, "InvalidParameter.InstanceIds", f"The specified parameter InstanceIds holds more than {MAX_IDS} ids.")
        want_tags = _tags(p)
        with self._lock:
            self._reap()
            match = [
                inst
                for inst in self.instances.values()
                if (ids is None or inst.id in ids)
                and all(inst.tags.get(k) == v for k, v in want_tags.items())
                and (not p.get("Status") or self._status(inst) == p["Status"])
                and (not p.get("ZoneId") or inst.zone == p["ZoneId"])
                and (not p.get("InstanceType") or inst.instance_type == p["InstanceType"])
            ]
            start = _token_offset(p.get("NextToken"))
            page = match[start : start + max_results]
            more = start + max_results < len(match)
            return {
                "TotalCount": len(match),
                "NextToken": _offset_token(start + max_results) if more else "",
                "MaxResults": max_results,
                "Instances": {"Instance": [self._shape(inst) for inst in page]},
            }

    def _delete_instances(self, p: dict[str, str]) -> dict:
        ids = [v for k, v in sorted(p.items(), key=lambda kv: _index(kv[0])) if k.startswith("InstanceId.")]
        if not ids:
            raise EcsApiError(400, "MissingParameter", "The input parameter \"InstanceId\" that is mandatory for processing this request is not supplied.")
        if len(ids) > MAX_IDS:
            raise EcsApiError(400, "InvalidParameter.InstanceIdsCount", f"At most {MAX_IDS} InstanceId.N may be given.")
        force = p.get("Force", "false").lower() == "true"
        token = p.get("ClientToken")
        gone: list[EmulatedInstance] = []
        with self._lock:
            if token and token in self._delete_tokens:
                return {}
            self._reap()
            for i in ids:
                inst = self.instances.get(i)
                if inst is None:
                    raise EcsApiError(404, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist.")
                if not force and self._status(inst) != "Stopped":
                    raise EcsApiError(403, "IncorrectInstanceStatus", "The current status of the resource does not support this operation.")
            now = self.clock()
            for i in ids:
                inst = self.instances[i]
                if inst.deleted_at is None:
                    inst.deleted_at = now
                    gone.append(inst)
            if token:
                self._delete_tokens.add(token)
            self._reap()
        for inst in gone:
            if self.on_delete:
                self.on_delete(inst)
        return {}

    def _describe_regions(self, p: dict[str, str]) -> dict:
        endpoint = f"ecs.{self.region}.aliyuncs.com"
        return {"Regions": {"Region": [{"RegionId": self.region, "LocalName": self.region, "RegionEndpoint": endpoint}]}}

    ACTIONS = {
        "DescribeRegions": _describe_regions,
        "RunInstances": _run_instances,
        "DescribeInstances": _describe_instances,
        "DeleteInstances": _delete_instances,
    }

    # --- internals -------------------------------------------------------------------

    def _take_stock(self, zone: str, instance_type: str, wanted: int, least: int) -> int:
        """Take up to `wanted` from the stock; 0 (and nothing taken) if under `least`."""
        keys = [k for k in ((zone, instance_type), (zone, None), (None, instance_type)) if k in self._stock]
        count = min([self._stock[k] for k in keys] + [wanted])
        if count < least:
            return 0
        for k in keys:
            self._stock[k] -= count
        return count

    def _create(self, zone, instance_type, image_id, vswitch_id, sg_id, tags, name) -> str:
        n = next(self._ips)
        inst = EmulatedInstance(
            id="i-" + secrets.token_hex(10),
            region=self.region,
            zone=zone,
            instance_type=instance_type,
            image_id=image_id,
            vswitch_id=vswitch_id,
            security_group_id=sg_id,
            tags=dict(tags),
            created=self.clock(),
            creation_time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
            # loopback: nothing outside this machine is ever addressed, even by mistake
            address=f"127.78.{n // 250 % 250}.{n % 250 + 2}",
            instance_name=name,
        )
        if self.on_create:
            inst.address = self.on_create(inst) or inst.address
        self.instances[inst.id] = inst
        self.created.append(inst)
        return inst.id

    def _status(self, inst: EmulatedInstance) -> str:
        if inst.deleted_at is not None:
            return "Stopping"
        age = self.clock() - inst.created
        if age < self.pending_seconds:
            return "Pending"
        if age < self.pending_seconds + self.starting_seconds:
            return "Starting"
        return "Running"

    def _reap(self) -> None:
        now = self.clock()
        for i in [i for i, inst in self.instances.items() if inst.deleted_at is not None and now - inst.deleted_at >= self.delete_seconds]:
            del self.instances[i]

    def _shape(self, inst: EmulatedInstance) -> dict:
        shape = {
            "InstanceId": inst.id,
            "InstanceName": inst.instance_name or inst.id,
            "HostName": inst.id,
            "RegionId": inst.region,
            "ZoneId": inst.zone,
            "InstanceType": inst.instance_type,
            "ImageId": inst.image_id,
            "Status": self._status(inst),
            "InstanceChargeType": "PostPaid",
            "InternetChargeType": "PayByTraffic",
            "InstanceNetworkType": "vpc",
            "CreationTime": inst.creation_time,
            "ExpiredTime": "2099-12-31T15:59Z",
            "SecurityGroupIds": {"SecurityGroupId": [inst.security_group_id]},
            "VpcAttributes": {
                "VpcId": "vpc-emulated",
                "VSwitchId": inst.vswitch_id,
                "PrivateIpAddress": {"IpAddress": [inst.address]},
                "NatIpAddress": "",
            },
            "PublicIpAddress": {"IpAddress": []},
            "InnerIpAddress": {"IpAddress": []},
        }
        if inst.tags:  # ECS leaves "Tags" out for an untagged instance
            shape["Tags"] = {"Tag": [{"TagKey": k, "TagValue": v} for k, v in inst.tags.items()]}
        return shape


def _int(p: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(p.get(name, default))
    except ValueError:
        raise EcsApiError(400, f"InvalidParameter.{name}", f"The specified parameter {name} is not an integer.") from None


def _index(key: str) -> int:
    try:
        return int(key.split(".")[1])
    except (IndexError, ValueError):
        return 0


def _tags(p: Mapping[str, str]) -> dict[str, str]:
    tags = {}
    for n in range(1, 21):
        key = p.get(f"Tag.{n}.Key")
        if key is not None:
            tags[key] = p.get(f"Tag.{n}.Value", "")
    return tags


def _offset_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _token_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        assert kind == "offset"
        return int(offset)
    except Exception:
        raise EcsApiError(400, "InvalidParameter.NextToken", "The specified parameter NextToken is not valid.") from None


def _percent(s: str) -> str:
    return quote(s, safe="~")


def _signature(params: Mapping[str, str], secret: str, method: str) -> tuple[str, str]:
    """Alibaba Cloud RPC signature v1.0 (HMAC-SHA1): (signature, string to sign)."""
    canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(params.items()) if k != "Signature")
    to_sign = f"{method}&{_percent('/')}&{_percent(canonical)}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode(), to_sign


class _Handler(BaseHTTPRequestHandler):
    emulator: EcsEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # the call records are the log
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        size = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(size) if size else b""

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path.startswith("/_emulator/"):
            return self._admin(method, url.path, body)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if body and "json" not in (self.headers.get("Content-Type") or ""):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        status, reply = self.emulator.handle(params, method)
        self._reply(status, reply)

    def _admin(self, method: str, path: str, body: bytes) -> None:
        emu = self.emulator
        spec = json.loads(body or b"{}")
        if path == "/_emulator/faults" and method == "POST":
            emu.apply_faults(spec)
            return self._reply(200, {"ok": True})
        if path == "/_emulator/reset" and method == "POST":
            emu.reset()
            return self._reply(200, {"ok": True})
        if path == "/_emulator/calls":
            with emu._lock:
                calls = [{"action": c.action, "params": c.params, "error": c.error} for c in emu.calls]
            return self._reply(200, {"calls": calls})
        if path == "/_emulator/instances" and method == "POST":
            iid = emu.create_instance(zone=spec["zone"], instance_type=spec.get("instance_type", "ecs.g7.large"), tags=spec.get("tags", {}))
            return self._reply(200, {"InstanceId": iid})
        self._reply(404, {"Code": "NotFound", "Message": f"no admin path {method} {path}"})

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")
