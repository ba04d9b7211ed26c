"""One wrapper for the four kinds of gRPC method handler, that every server interceptor uses."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:  # generic only in grpc's stubs
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Context = grpc.aio.ServicerContext
    Handler = grpc.RpcMethodHandler
# Entered around the whole call, streamed responses included; it may abort.
Scope = Callable[[Context], AbstractAsyncContextManager[object]]
# Sees each request message before the servicer does; it may abort.
Admit = Callable[[Any, Context], Awaitable[None]]
Deserializer = Callable[[bytes], Any]

KINDS = {  # (request streaming, response streaming)
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def no_scope(context: Context) -> AbstractAsyncContextManager[object]:
    return nullcontext()


def wrap(
    handler: Handler,
    scope: Scope = no_scope,
    admit: Admit | None = None,
    deserializer: Deserializer | None = None,
) -> Handler:
    """The same handler of the same kind, with `scope` around each call, `admit` before each
    request and, if given, another request deserializer."""
    streaming = handler.request_streaming
    # grpc's stubs type only sync behaviors; the aio server's are coroutines or async generators.
    behavior: Any = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )

    async def admitted(request: Any, context: Context) -> Any:
        if admit is None:
            return request
        if streaming:
            return _each_admitted(request, context, admit)
        await admit(request, context)
        return request

    async def call(request: Any, context: Context) -> Any:
        # A unary response, or a stream the servicer writes with context.write().
        async with scope(context):
            return await behavior(await admitted(request, context), context)

    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        async with scope(context):
            responses = behavior(await admitted(request, context), context)
            async with aclosing(responses):
                async for response in responses:
                    yield response

    wrapped = stream if inspect.isasyncgenfunction(behavior) else call
    serializer = handler.response_serializer
    if handler.response_streaming and serializer is not None:
        serializer = _AsIs(serializer)
    return KINDS[streaming, handler.response_streaming](
        wrapped, deserializer or handler.request_deserializer, serializer
    )


def serialized(data: bytes) -> Any:
    """A streamed response that is already its bytes: sent as it is (every interceptor wraps
    its handler here, so every server streams them). One event's response, made once, goes
    to all of its watchers so."""
    return data


class _AsIs:
    """A response serializer that sends bytes as they are, and serializes anything else."""

    def __init__(self, serializer: Callable[[Any], bytes]) -> None:
        self.serialize: Callable[[Any], bytes] = getattr(serializer, "serialize", serializer)

    def __call__(self, response: Any) -> bytes:
        return response if isinstance(response, bytes) else self.serialize(response)


async def _each_admitted(
    requests: AsyncIterator[Any], context: Context, admit: Admit
) -> AsyncIterator[Any]:
    async for request in requests:
        await admit(request, context)
        yield request
