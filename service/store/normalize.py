"""Lenient reading: every shape Jan has written over its versions, as canonical OpenAI objects.

These functions are total: any JSON object becomes a valid `Message`/`Thread`, never an exception,
because one odd line in a user's folder must not make a thread unreadable. What cannot be mapped is
mapped to the nearest valid value (the stored line itself is never changed by reading).
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec

from ..models import (
    Attachment,
    CodeInterpreterResources,
    CodeInterpreterTool,
    ContentPart,
    FileSearchResources,
    FileSearchTool,
    ImageFile,
    ImageFilePart,
    ImageUrl,
    ImageUrlPart,
    IncompleteDetails,
    Message,
    RefusalPart,
    TextAnnotation,
    TextPart,
    TextValue,
    Thread,
    ToolResources,
    text_part,
)
from ..uris import as_uri
from .metadata import dumps, metadata

STATUS = {
    "completed": "completed",
    "ready": "completed",
    "in_progress": "in_progress",
    "pending": "in_progress",
    "incomplete": "incomplete",
    "error": "incomplete",
    "stopped": "incomplete",
}
_REASONS = {"content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed"}
_DETAILS = {"auto", "low", "high"}


def seconds(value: Any) -> int | None:
    """A timestamp in seconds from int/float seconds or milliseconds (> 1e12 means ms)."""
    if value is None:
        return None
    if value.__class__ is int and 0 <= value <= 1e16:  # the common cases: seconds, and Jan's ms
        return value if value <= 1e12 else value // 1000
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        else:
            return None
    if value != value or value < 0 or value > 1e16:  # NaN, negative, absurd
        return None
    if value > 1e12:
        value = value / 1000
    return int(value)


def moment(value: Any) -> int | None:
    """`completed_at` / `incomplete_at`: seconds, or None when not set (Jan 0.6 writes 0 for
    that, which would read as 1970)."""
    return seconds(value) or None


def created_seconds(obj: dict[str, Any]) -> int:
    get = obj.get
    for key in ("created_at", "created", "updated", "updated_at"):
        value = get(key)
        if value is not None and (ts := seconds(value)) is not None:
            return ts
    return 0


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else dumps(value)


def _detail(obj: dict[str, Any]) -> Any:
    detail = obj.get("detail")
    return detail if isinstance(detail, str) and detail in _DETAILS else None  # may be a list


def _image_url(value: Any) -> ImageUrlPart | None:
    if isinstance(value, str) and (url := as_uri(value)):
        return ImageUrlPart(image_url=ImageUrl(url=url))
    if isinstance(value, dict) and isinstance(value.get("url"), str) and (
            url := as_uri(value["url"])):
        detail = _detail(value)
        return ImageUrlPart(image_url=ImageUrl(url=url, detail=detail) if detail
                            else ImageUrl(url=url))
    return None


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("value")
        if isinstance(inner, str):
            return inner
        return dumps(value)
    return "" if value is None else dumps(value)


def _annotations(value: Any) -> list[TextAnnotation]:
    """The annotations that are valid OpenAI ones; clients validate them, so others are dropped."""
    out: list[TextAnnotation] = []
    for item in value if isinstance(value, list) else ():
        with contextlib.suppress(msgspec.ValidationError):
            out.append(msgspec.convert(item, TextAnnotation))
    return out


def _part(part: Any) -> ContentPart:
    if isinstance(part, str):
        return text_part(part)
    if not isinstance(part, dict):
        return text_part(dumps(part))
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        annotations = text.get("annotations") if isinstance(text, dict) else None
        return TextPart(text=TextValue(value=_text_value(text),
                                       annotations=_annotations(annotations)))
    if kind in ("image_url", "image"):
        value = part.get("image_url") or part.get("url")
        image = _image_url(value)
        if image is not None:
            return image
        if isinstance(value, dict):
            value = value.get("url")
        if isinstance(value, str) and value.strip():  # a file path, no URL: kept as text
            return text_part(value)
    if kind == "image_file":
        image_file = part.get("image_file")
        if isinstance(image_file, dict) and isinstance(image_file.get("file_id"), str):
            detail = _detail(image_file)
            file_id = image_file["file_id"]
            ref = (ImageFile(file_id=file_id, detail=detail) if detail
                   else ImageFile(file_id=file_id))
            return ImageFilePart(image_file=ref)
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return RefusalPart(refusal=part["refusal"])
    # Legacy parts (Jan's `pdf`, anything unknown): keep whatever text they carry.
    for key in ("text", "name", "url"):
        if key in part:
            return text_part(_text_value(part[key]))
    return text_part("")


# Parts newer Jan versions keep beside a reply's text: the model's reasoning and its tool calls.
# A message's content in OpenAI's API has neither (tool calls are run steps there): served as
# text, the reasoning read as part of the answer and a tool call as an empty text.
_NOT_CONTENT = frozenset({"reasoning", "tool_call"})


def content(value: Any) -> list[ContentPart]:
    if isinstance(value, list):
        return [_part(p) for p in value  # a type may be anything, a list (unhashable) too
                if p.__class__ is not dict or (kind := p.get("type")).__class__ is not str
                or kind not in _NOT_CONTENT]
    if value is None:
        return []
    return [_part(value)]


def _attachments(value: Any) -> list[Attachment]:
    out: list[Attachment] = []
    if not value or not isinstance(value, list):
        return out
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("file_id"), str) and item["file_id"]:
            tools = item.get("tools")
            tools = tools if isinstance(tools, list) else []
            out.append(Attachment(file_id=item["file_id"][:256], tools=[
                CodeInterpreterTool() if t.get("type") == "code_interpreter" else FileSearchTool()
                for t in tools
                if isinstance(t, dict) and t.get("type") in ("code_interpreter", "file_search")
            ]))
    return out


def file_ids(obj: dict[str, Any]) -> list[str]:
    """The file ids a stored message refers to: `attachments[].file_id` and legacy `file_ids`."""
    ids = [a.file_id for a in _attachments(obj.get("attachments"))]
    legacy = obj.get("file_ids")
    if isinstance(legacy, list):
        ids.extend(f for f in legacy if isinstance(f, str) and f)
    return list(dict.fromkeys(ids))  # once each (one file may be attached for two tools)


def message(obj: dict[str, Any], thread_id: str) -> Message:
    """A stored message object (any Jan shape) as the canonical OpenAI v2 message."""
    get = obj.get
    status = get("status", "completed")
    status = STATUS.get(status, "completed") if status.__class__ is str else "completed"
    details = get("incomplete_details")
    reason = details.get("reason") if details.__class__ is dict else None
    return Message(
        id=str(get("id")),
        created_at=created_seconds(obj),
        thread_id=thread_id,
        status=status,  # type: ignore[arg-type]
        incomplete_details=(IncompleteDetails(reason=reason)  # type: ignore[arg-type]
                            if isinstance(reason, str) and reason in _REASONS else None),
        completed_at=moment(get("completed_at")),
        incomplete_at=moment(get("incomplete_at")),
        role="user" if get("role") == "user" else "assistant",
        content=content(get("content")),
        assistant_id=_str_or_none(get("assistant_id")),
        run_id=_str_or_none(get("run_id")),
        attachments=_attachments(get("attachments")),
        metadata=metadata(get("metadata")),
    )


def _string_list(value: Any, limit: int) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)][:limit]


def tool_resources(value: Any) -> ToolResources | None:
    if not isinstance(value, dict):
        return ToolResources()  # OpenAI serves {} for a thread without tool resources
    resources = ToolResources()
    code = value.get("code_interpreter")
    if isinstance(code, dict):
        resources.code_interpreter = CodeInterpreterResources(
            file_ids=_string_list(code.get("file_ids"), 20))
    search = value.get("file_search")
    if isinstance(search, dict):
        resources.file_search = FileSearchResources(
            vector_store_ids=_string_list(search.get("vector_store_ids"), 1))
    return resources


def thread(obj: dict[str, Any], thread_id: str, fallback_created: int) -> Thread:
    """A stored `thread.json` (any Jan shape) as the canonical OpenAI thread object."""
    created = created_seconds(obj) or fallback_created
    meta = metadata(obj.get("metadata"))
    title = obj.get("title")
    if isinstance(title, str) and title and "title" not in meta and len(meta) < 16:
        meta["title"] = title[:512]  # Jan keeps the title beside metadata; clients look inside
    return Thread(
        id=thread_id,
        created_at=created,
        tool_resources=tool_resources(obj.get("tool_resources")),
        metadata=meta,
    )
