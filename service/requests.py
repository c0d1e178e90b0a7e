"""msgspec Structs for request bodies (they forbid unknown fields; limits live in the types, so
validation is declared once), and what a request's content becomes in a stored message.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .models import (
    Attachment,
    CodeInterpreterResources,
    ContentPart,
    ImageFilePart,
    ImageUrlPart,
    IncompleteReason,
    Metadata,
    ModifiedMetadata,
    Role,
    Status,
    Timestamp,
    ToolResources,
    text_part,
)
from .uris import as_uri

# --- a thread create's new vector stores ---------------------------------------------------------

class AutoChunking(Struct, tag_field="type", tag="auto", forbid_unknown_fields=True):
    pass


class StaticChunkingSizes(Struct, kw_only=True, forbid_unknown_fields=True):
    max_chunk_size_tokens: Annotated[int, Meta(ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[int, Meta(ge=0)]

    def __post_init__(self) -> None:
        if self.chunk_overlap_tokens * 2 > self.max_chunk_size_tokens:
            raise ValueError("`chunk_overlap_tokens` must not exceed half of "
                             "`max_chunk_size_tokens`")


class StaticChunking(Struct, tag_field="type", tag="static", forbid_unknown_fields=True):
    static: StaticChunkingSizes


class NewVectorStore(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """`tool_resources.file_search.vector_stores[]` of a thread create: kept in thread.json as
    given (no vector store is made here)."""
    file_ids: list[str] | UnsetType = UNSET
    chunking_strategy: AutoChunking | StaticChunking | UnsetType = UNSET
    metadata: Metadata | UnsetType | None = UNSET


class NewFileSearchResources(Struct, kw_only=True, forbid_unknown_fields=True,
                             omit_defaults=True):
    """A thread create's file search: the spec takes exactly one of the two."""
    vector_store_ids: Annotated[list[str], Meta(max_length=1)] | UnsetType = UNSET
    vector_stores: Annotated[list[NewVectorStore], Meta(max_length=1)] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if (self.vector_store_ids is UNSET) == (self.vector_stores is UNSET):
            raise ValueError("expected exactly one of `vector_store_ids` and `vector_stores`")


class NewToolResources(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    code_interpreter: CodeInterpreterResources | UnsetType = UNSET
    file_search: NewFileSearchResources | UnsetType = UNSET


# --- bodies --------------------------------------------------------------------------------------


class TextInputPart(Struct, kw_only=True, tag_field="type", tag="text",
                    forbid_unknown_fields=True):
    text: str


InputPart = TextInputPart | ImageUrlPart | ImageFilePart
InputContent = str | Annotated[list[InputPart], Meta(min_length=1)]


class CreateMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role
    content: InputContent
    attachments: list[Attachment] | None = None
    metadata: Metadata | None = None


class CreateThread(Struct, kw_only=True, forbid_unknown_fields=True):
    messages: list[CreateMessage] = msgspec.field(default_factory=list)
    tool_resources: NewToolResources | None = None
    metadata: Metadata | None = None


class ModifyThread(Struct, kw_only=True, forbid_unknown_fields=True):
    tool_resources: ToolResources | UnsetType | None = UNSET
    metadata: ModifiedMetadata | UnsetType | None = UNSET


class IncompleteDetailsInput(Struct, kw_only=True, forbid_unknown_fields=True):
    reason: IncompleteReason


class ModifyMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    """OpenAI allows `metadata`; the rest is Jan's extension for editing a message in place."""

    metadata: ModifiedMetadata | UnsetType | None = UNSET
    content: InputContent | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    completed_at: Timestamp | UnsetType | None = UNSET
    incomplete_at: Timestamp | UnsetType | None = UNSET
    incomplete_details: IncompleteDetailsInput | UnsetType | None = UNSET


def output_content(content: str | list[InputPart], at: str = "") -> list[ContentPart]:
    """Request content (a string or input parts) as the parts a message object carries. An
    image URL is stored as a URI (see uris.py); one that is no URL is a validation error (at
    `$.<at>content[i]`: `at` is the message's place in the body, `messages[2].` in a thread
    create)."""
    if isinstance(content, str):
        return [text_part(content)]
    out: list[ContentPart] = []
    for i, p in enumerate(content):
        if isinstance(p, TextInputPart):
            out.append(text_part(p.text))
        elif isinstance(p, ImageUrlPart) and (uri := as_uri(p.image_url.url)) != p.image_url.url:
            if uri is None:
                raise msgspec.ValidationError(
                    "Expected a URL (an absolute URI, such as https://... or data:...) - at "
                    f"`$.{at}content[{i}].image_url.url`")
            out.append(ImageUrlPart(image_url=msgspec.structs.replace(p.image_url, url=uri)))
        else:
            out.append(p)
    return out


# Built once: msgspec decoders are cheap to call and costly to make.
REQUEST_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in (CreateMessage, CreateThread, ModifyThread, ModifyMessage)
}
