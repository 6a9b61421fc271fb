"""The OpenAPI document says what the API takes and answers, and the docs pages work offline,
against a real `session-events serve` process."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from domain.event_types import EventType
from domain.status import SessionStatus
from tests.conftest import ServerProcess

EVENT_TYPES = {member.value for member in EventType}
API_OPERATIONS = {
    ("post", "/api/sessions"): {"201", "400", "401", "429", "413", "422", "503"},
    ("get", "/api/sessions"): {"200", "401", "429", "422", "503"},
    ("get", "/api/sessions/{session_id}"): {"200", "401", "429", "404", "422", "503"},
    ("delete", "/api/sessions/{session_id}"): {"204", "401", "429", "404", "503"},
    ("post", "/api/sessions/{session_id}/events"): {"200", "400", "401", "429", "404", "413", "422", "503"},
    ("post", "/api/sessions/{session_id}/events/batch"): {"200", "400", "401", "429", "404", "413", "422", "503"},
    ("get", "/api/sessions/{session_id}/events"): {"200", "401", "429", "404", "422", "503"},
    ("get", "/api/stream"): {"200", "401", "429", "503"},
}


@pytest.fixture
def document(server: ServerProcess) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/docs/openapi.json")
    assert response.status_code == 200
    return response.json()


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follows `$ref` (and Litestar's `allOf: [$ref]` wrapping) to the schema itself."""
    while True:
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif len(schema.get("allOf", [])) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def request_body(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    content = document["paths"][path][method]["requestBody"]["content"]
    assert set(content) == {"application/json"}
    return resolve(document, content["application/json"]["schema"])


def test_the_event_body_is_documented_with_its_types(document: dict[str, Any]) -> None:
    event = request_body(document, "post", "/api/sessions/{session_id}/events")
    properties = event["properties"]
    assert set(event["required"]) == {"event_type", "sent_at", "data"}
    assert set(properties) >= {"event_type", "sent_at", "data", "metadata", "id", "session_id"}
    event_type = resolve(document, properties["event_type"])
    assert set(event_type["enum"]) == EVENT_TYPES and len(event_type["enum"]) == 18
    assert "camelCase" in properties["event_type"]["description"]
    assert (properties["sent_at"]["type"], properties["sent_at"]["format"]) == ("string", "date-time")
    assert properties["data"]["type"] == "object"
    assert {"type": "string", "format": "uuid"} in properties["id"]["oneOf"]
    assert {"type": "integer"} in properties["session_id"]["oneOf"]
    for status in SessionStatus:  # what `session_status_changed` accepts is said
        assert status.value in properties["data"]["description"]


def test_the_batch_and_session_bodies_are_documented(document: dict[str, Any]) -> None:
    batch = request_body(document, "post", "/api/sessions/{session_id}/events/batch")
    assert batch["required"] == ["events"]
    events = batch["properties"]["events"]
    assert (events["type"], events["minItems"], events["maxItems"]) == ("array", 1, 1000)
    assert resolve(document, events["items"]) == request_body(document, "post", "/api/sessions/{session_id}/events")
    session = request_body(document, "post", "/api/sessions")
    assert session["required"] == []
    assert document["paths"]["/api/sessions"]["post"]["requestBody"]["required"] is False  # no body is fine
    assert set(session["properties"]) == {"type", "agent", "environment", "state"}


def test_the_documented_required_fields_are_the_ones_the_api_requires(
    document: dict[str, Any], client: httpx.Client
) -> None:
    sid = client.post("/api/sessions", json={}).json()["data"]["id"]
    required = request_body(document, "post", "/api/sessions/{session_id}/events")["required"]
    minimal = {"event_type": "tool_called", "sent_at": "2026-01-01T00:00:00Z", "data": {}}
    assert set(minimal) == set(required)
    assert client.post(f"/api/sessions/{sid}/events", json=minimal).status_code == 200
    for name in required:
        without = {key: value for key, value in minimal.items() if key != name}
        response = client.post(f"/api/sessions/{sid}/events", json=without)
        assert (response.status_code, response.json()["errors"]) == (422, {name: ["can't be blank"]})
    for event_type in resolve(
        document, request_body(document, "post", "/api/sessions/{session_id}/events")["properties"]["event_type"]
    )["enum"]:
        assert client.post(f"/api/sessions/{sid}/events", json={**minimal, "event_type": event_type}).status_code == 200


def test_query_parameters_are_documented_with_their_bounds(document: dict[str, Any]) -> None:
    for path in ("/api/sessions", "/api/sessions/{session_id}/events"):
        parameters = {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}
        assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, 1000)
        assert parameters["offset"]["minimum"] == 0
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/api/sessions/{session_id}/events"]["get"]["parameters"]
    }
    assert set(parameters["event_type"]["enum"]) == EVENT_TYPES
    assert parameters["order"]["enum"] == ["asc", "desc"]


def test_the_sequence_of_a_session_read_is_documented(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/api/sessions/{session_id}"]["get"]["parameters"]}
    sequence = parameters["sequence"]
    assert (sequence["in"], sequence["required"]) == ("query", False)
    assert sequence["schema"]["minimum"] == 0 and {"integer"} <= set(_types(sequence["schema"]))
    assert "event_count" in sequence["description"]


def _types(schema: dict[str, Any]) -> list[str]:
    if "oneOf" in schema:
        return [t for option in schema["oneOf"] for t in _types(option)]
    kind = schema.get("type")
    return kind if isinstance(kind, list) else [kind] if kind else []


def test_every_route_documents_the_answers_it_gives(document: dict[str, Any]) -> None:
    for (method, path), statuses in API_OPERATIONS.items():
        responses = document["paths"][path][method]["responses"]
        assert set(responses) == statuses, (method, path)
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"]
        if "503" in responses:
            assert "Retry-After" in responses["503"]["headers"]
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"]
    health = document["paths"]["/health"]["get"]["responses"]
    assert set(health) == {"200", "503"}


def test_error_answers_are_documented_in_their_shapes(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/sessions/{session_id}/events/batch"]["post"]["responses"]

    def schema(status: str) -> dict[str, Any]:
        return resolve(document, responses[status]["content"]["application/json"]["schema"])

    invalid = schema("422")
    assert invalid["required"] == ["errors"] and set(invalid["properties"]) == {"errors", "index", "hints"}
    assert invalid["properties"]["errors"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert schema("400") == invalid
    assert set(schema("404")["required"]) == {"status", "error"}
    assert set(schema("401")["required"]) == set(schema("503")["required"]) == {"error", "error_description"}
    assert {"status_code", "detail"} <= set(schema("413")["required"])


def test_api_routes_declare_the_bearer_scheme_and_health_does_not(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `session-events tokens create`.",
    }
    for method, path in API_OPERATIONS:
        assert document["paths"][path][method]["security"] == [{"bearerAuth": []}], (method, path)
    assert "security" not in document["paths"]["/health"]["get"]
    assert "security" not in document["paths"]["/api/ws"]["get"]  # its token is a query parameter
    assert "security" not in document  # not required globally: /health and /docs need no token
    assert not [path for path in document["paths"] if path.startswith("/docs")]


def test_the_stream_is_documented_as_server_sent_events(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/stream"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"text/event-stream"}
    for name in ("session_events", "session_updated", "session_erased", "resync"):
        assert name in ok["description"]
    parameters = {(p["in"], p["name"].lower()) for p in document["paths"]["/api/stream"]["get"]["parameters"]}
    assert parameters == {("header", "last-event-id"), ("query", "last_event_id")}


def test_the_websocket_is_documented_and_a_plain_request_is_told_to_upgrade(
    document: dict[str, Any], server: ServerProcess
) -> None:
    operation = document["paths"]["/api/ws"]["get"]
    assert "101" in operation["responses"] and "WebSocket" in operation["description"]
    assert {p["name"] for p in operation["parameters"]} == {"token", "last_event_id"}
    response = httpx.get(f"{server.base_url}/api/ws")
    assert response.status_code == 426 and response.headers["upgrade"] == "websocket"
    assert response.json()["error"] == "upgrade_required"


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attribute in ("src", "href"):
            if tag in ("script", "link", "img") and named.get(attribute):
                self.urls.append(str(named[attribute]))


@pytest.mark.parametrize("page", ["/docs", "/docs/swagger"])
def test_the_docs_pages_load_everything_from_this_server(server: ServerProcess, page: str) -> None:
    """Without internet access the page must still work: every script, style sheet and icon it
    loads is served here."""
    response = httpx.get(f"{server.base_url}{page}")
    assert response.status_code == 200 and "SwaggerUIBundle" in response.text
    parser = _Assets()
    parser.feed(response.text)
    assert len(parser.urls) >= 3  # the UI's script, its preset and its style sheet at least
    own = urlsplit(server.base_url).netloc
    for url in parser.urls:
        absolute = urljoin(f"{server.base_url}{page}", url)
        assert urlsplit(absolute).netloc == own, f"{page} loads {url} from elsewhere"
        asset = httpx.get(absolute)
        assert asset.status_code == 200 and asset.content, url


def test_an_unknown_event_type_is_told_the_known_ones(client: httpx.Client) -> None:
    sid = client.post("/api/sessions", json={}).json()["data"]["id"]
    event = {"event_type": "toolcall", "sent_at": "2026-01-01T00:00:00Z", "data": {}}
    response = client.post(f"/api/sessions/{sid}/events", json=event)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == {"event_type": ["is invalid"]}  # unchanged: clients compare it
    hint = body["hints"]["event_type"]
    assert all(name in hint for name in EVENT_TYPES) and "camelCase" in hint
    batch = client.post(f"/api/sessions/{sid}/events/batch", json={"events": [event]})
    assert (batch.json()["index"], batch.json()["hints"]) == (0, body["hints"])
    query = client.get(f"/api/sessions/{sid}/events?event_type=toolcall")
    assert query.status_code == 422 and query.json()["hints"] == body["hints"]


def test_other_errors_carry_no_hints(client: httpx.Client) -> None:
    sid = client.post("/api/sessions", json={}).json()["data"]["id"]
    response = client.post(f"/api/sessions/{sid}/events", json={"event_type": "tool_called", "data": {}})
    assert response.json() == {"errors": {"sent_at": ["can't be blank"]}}
