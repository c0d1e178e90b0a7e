"""`GET /openapi.json`: a valid OpenAPI 3.1 document covering every route (SSE included), whose
schemas come from the models the handlers use and match what the server really sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema
import msgspec
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from service.api.gate import unanswered
from service.app import create_app
from service.config import Config
from service.requests import CreateMessage

EVENT_STREAMS = ("/v1/threads/{thread_id}/events", "/v1/events")


async def document(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    return await resp.json()  # type: ignore[no-any-return]


def response_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return schema  # type: ignore[no-any-return]


def check(doc: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    """Validate against a schema of the document, resolving its `#/components/...` refs."""
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(instance)


async def test_document_is_valid_openapi(client: TestClient) -> None:
    doc = await document(client)
    validate(doc)
    assert doc["openapi"].startswith("3.1")


async def test_every_route_is_described(client: TestClient) -> None:
    doc = await document(client)
    for route in client.app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        path = re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", route.resource.canonical)
        described = route.method.lower() in doc["paths"].get(path, {})
        assert described != unanswered(route), (route.method, path)
    assert "/v1/threads/{thread_id}/messages/{message_id}/files/{file_id}" in doc["paths"]
    # OpenAI's create-and-run is out of scope: always a 404 here, so not an operation.
    assert "/v1/threads/runs" not in doc["paths"]
    assert (await client.post("/v1/threads/runs", json={})).status == 404


async def test_event_streams_are_described_as_text_event_stream(client: TestClient) -> None:
    doc = await document(client)
    for path in EVENT_STREAMS:
        op = doc["paths"][path]["get"]
        assert set(op["responses"]["200"]["content"]) == {"text/event-stream"}
        assert "thread.message.created" in op["responses"]["200"]["description"]
        assert any(p["name"] == "Last-Event-ID" and p["in"] == "header" for p in op["parameters"])


async def test_resume_ids_the_streams_send_are_the_ones_the_document_allows(
        client: TestClient) -> None:
    """A thread stream replays messages older than the journal with position ids
    (`0:<message id>`) and takes them back; the all-threads stream sends journal ids only."""
    doc = await document(client)

    def patterns(path: str) -> set[str]:
        return {p["schema"]["pattern"] for p in doc["paths"][path]["get"]["parameters"]
                if p["name"] in ("Last-Event-ID", "last_event_id")}

    for pattern in patterns("/v1/threads/{thread_id}/events"):
        assert all(re.fullmatch(pattern, i) for i in ("0:old2", "0:msg_abc", "14493")), pattern
        assert not re.fullmatch(pattern, "0:") and not re.fullmatch(pattern, "x1")
    for pattern in patterns("/v1/events"):
        assert re.fullmatch(pattern, "14493") and not re.fullmatch(pattern, "0:old2")
    thread = await (await client.post("/v1/threads", json={})).json()
    resp = await client.get(f"/v1/threads/{thread['id']}/events",
                            headers={"Last-Event-ID": "0:old2"})
    assert resp.status == 200  # taken (an id no longer there: the stream starts at the end)
    resp.close()
    resp = await client.get("/v1/events", headers={"Last-Event-ID": "0:old2"})
    assert resp.status == 400


async def test_request_schemas_are_the_handlers_models(client: TestClient) -> None:
    doc = await document(client)
    body = doc["paths"]["/v1/threads/{thread_id}/messages"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateMessage"}
    (_,), components = msgspec.json.schema_components(
        [CreateMessage], ref_template="#/components/schemas/{name}")
    assert doc["components"]["schemas"]["CreateMessage"] == components["CreateMessage"]
    params = doc["paths"]["/v1/threads/{thread_id}/messages"]["get"]["parameters"]
    assert {p["name"] for p in params} == {"thread_id", "limit", "order", "after", "before",
                                           "run_id"}
    # A modify's metadata is checked against what is served (repo/base.py), yet documented with
    # OpenAI's limits, as a create's is.
    schemas = doc["components"]["schemas"]
    created = schemas["CreateMessage"]["properties"]["metadata"]["anyOf"][0]
    assert created["additionalProperties"]["maxLength"] == 512
    for name in ("ModifyMessage", "ModifyThread"):
        assert schemas[name]["properties"]["metadata"]["anyOf"][0] == created, name


async def test_real_responses_match_the_documented_schemas(client: TestClient) -> None:
    doc = await document(client)
    tp, mp = "/v1/threads/{thread_id}", "/v1/threads/{thread_id}/messages/{message_id}"
    thread = await (await client.post("/v1/threads", json={"metadata": {"k": "v"}})).json()
    check(doc, response_schema(doc, "/v1/threads", "post"), thread)
    message = await (await client.post(f"/v1/threads/{thread['id']}/messages", json={
        "role": "user", "content": [{"type": "text", "text": "hi"}],
        "attachments": [{"file_id": "file_1", "tools": [{"type": "file_search"}]}]})).json()
    check(doc, response_schema(doc, tp + "/messages", "post"), message)
    listing = await (await client.get(f"/v1/threads/{thread['id']}/messages")).json()
    check(doc, response_schema(doc, tp + "/messages", "get"), listing)
    check(doc, response_schema(doc, "/v1/threads", "get"),
          await (await client.get("/v1/threads")).json())
    files = await (await client.get(f"/v1/threads/{thread['id']}/messages/{message['id']}/files")
                   ).json()
    check(doc, response_schema(doc, mp + "/files", "get"), files)
    deleted = await (await client.delete(f"/v1/threads/{thread['id']}/messages/{message['id']}")
                     ).json()
    check(doc, response_schema(doc, mp, "delete"), deleted)
    error = await (await client.get("/v1/threads/nope")).json()
    check(doc, doc["paths"][tp]["get"]["responses"]["default"]["content"]["application/json"][
        "schema"], error)
    # And a response that does not match is caught: the check is not vacuous.
    try:
        check(doc, response_schema(doc, tp, "get"), {**thread, "created_at": "yesterday"})
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a thread with a string created_at validated")


async def test_security_is_declared_when_keys_are_required(
        aiohttp_client: Any, make_config: Callable[..., Config]) -> None:
    client = await aiohttp_client(create_app(make_config(api_keys=("k",))))
    doc = await document(client)  # the document itself is open
    validate(doc)
    assert doc["paths"]["/v1/threads"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_operations_have_openais_ids_and_responses_require_every_field(
        client: TestClient) -> None:
    doc = await document(client)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    tp, mp = "/v1/threads/{thread_id}", "/v1/threads/{thread_id}/messages/{message_id}"
    for path, method, want in (("/v1/threads", "post", "createThread"), (tp, "get", "getThread"),
                               (tp, "post", "modifyThread"), (tp, "delete", "deleteThread"),
                               (tp + "/messages", "post", "createMessage"),
                               (tp + "/messages", "get", "listMessages"),
                               (mp, "get", "getMessage"), (mp, "post", "modifyMessage"),
                               (mp, "delete", "deleteMessage")):
        assert doc["paths"][path][method]["operationId"] == want
    schemas = doc["components"]["schemas"]
    # As in OpenAI's spec: the 14 fields of a message, the 5 of a thread, are always there.
    assert len(schemas["Message"]["required"]) == 14
    assert set(schemas["Thread"]["required"]) == {"id", "object", "created_at", "tool_resources",
                                                  "metadata"}
    assert set(schemas["ErrorDetail"]["required"]) == {"message", "type", "param", "code"}
    assert "object" in schemas[response_schema(doc, tp + "/messages", "get")["$ref"]
                               .rsplit("/", 1)[1]]["required"]
