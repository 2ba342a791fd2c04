using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Core.Pipeline;

/// <summary>A write handler (plugin code) threw or hung; the write was rolled back. Names the owner and handler.</summary>
public sealed class HandlerFailedException : StoreException
{
    public HandlerFailedException(string ownerId, string handlerName, PipelineStage stage, string write, Exception inner)
        : base(Describe(ownerId, handlerName, stage, write, inner), inner)
    {
        OwnerId = ownerId;
        HandlerName = handlerName;
        Stage = stage;
    }

    public HandlerFailedException() { OwnerId = HandlerName = ""; }
    public HandlerFailedException(string message) : base(message) { OwnerId = HandlerName = ""; }
    public HandlerFailedException(string message, Exception inner) : base(message, inner) { OwnerId = HandlerName = ""; }

    public string OwnerId { get; }
    public string HandlerName { get; }
    public PipelineStage Stage { get; }

    /// <summary>True when the handler was abandoned because it ran past its time budget.</summary>
    public bool TimedOut => InnerException is TimeoutException;

    private static string Describe(string ownerId, string handlerName, PipelineStage stage, string write, Exception inner) =>
        inner is TimeoutException
            ? $"Handler '{handlerName}' of '{ownerId}' ({stage}) on {write} {inner.Message}; it was abandoned and the write was rolled back."
            : $"Handler '{handlerName}' of '{ownerId}' ({stage}) on {write} failed: {inner.GetType().Name}: {inner.Message}. The write was rolled back.";
}
