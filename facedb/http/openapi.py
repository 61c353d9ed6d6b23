"""The OpenAPI document: FastAPI's, plus the bodies of the routes that take images.

Image routes read their body themselves (JSON with base64 images, or multipart file
parts), so FastAPI cannot see it: `image_body()` declares both content types for such a
route from the same pydantic model that validates it, and `document()` adds those models
to the components.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from facedb.http.schemas import ErrorResponse

REF = "#/components/schemas/{model}"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "INVALID_ARGUMENT: a bad field, image or body"),
        (401, "UNAUTHENTICATED: no or unknown API key"),
        (403, "PERMISSION_DENIED: the key's role or galleries do not allow it"),
        (404, "NOT_FOUND"),
        (409, "ALREADY_EXISTS, or FAILED_PRECONDITION (see error.status)"),
        (413, "RESOURCE_EXHAUSTED: the body is larger than max_message_bytes"),
        (429, "RESOURCE_EXHAUSTED: server busy or rate limited; retry later"),
        (500, "INTERNAL: a bug; the server log has the details"),
        (504, "DEADLINE_EXCEEDED: x-timeout-seconds passed"),
    )
}

# Models named by image_body(), added to the document's components.
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def image_body(model: type[BaseModel], images: dict[str, bool]) -> dict[str, Any]:
    """`openapi_extra` for a route taking `model` as JSON or multipart (`images`: field →
    is a list)."""
    _BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}},
                "multipart/form-data": {"schema": _multipart_schema(model, images)},
            },
        }
    }


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `model` from JSON itself (after the key check)."""
    _BODY_MODELS[model.__name__] = model
    content = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    return {"requestBody": {"required": True, "content": content}}


def _multipart_schema(model: type[BaseModel], images: dict[str, bool]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    binary = {"type": "string", "format": "binary"}
    properties: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        if name in images:
            properties[name] = {"type": "array", "items": binary} if images[name] else binary
        elif name == "metadata":
            properties[name] = {"type": "string", "description": "a JSON object of strings"}
        elif name == "filters":
            description = "a JSON array of attribute filters, as in the JSON body"
            properties[name] = {"type": "string", "description": description}
        else:
            properties[name] = prop
    return {"type": "object", "properties": properties, "required": schema.get("required", [])}


def document(app: FastAPI) -> dict[str, Any]:
    """The whole document, built once per app."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _BODY_MODELS.items():
            schema = model.model_json_schema(ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        app.openapi_schema = doc
    return app.openapi_schema
