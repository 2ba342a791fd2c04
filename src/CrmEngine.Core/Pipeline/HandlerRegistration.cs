using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Core.Pipeline;

/// <summary>
/// One subscription of a handler to writes of one entity at one stage. The plugin host
/// creates these from what plugins declare; the core invokes them under a timeout.
/// </summary>
public sealed class HandlerRegistration
{
    private HandlerRegistration(string ownerId, string entityName, Type entityType, PipelineStage stage, int order,
        string handlerName, Func<object, CancellationToken, Task> invoke)
    {
        OwnerId = ownerId;
        EntityName = entityName;
        EntityType = entityType;
        Stage = stage;
        Order = order;
        HandlerName = handlerName;
        Invoke = invoke;
    }

    /// <summary>Who owns the handler: a plugin id, or <c>core</c> / <c>rules</c>. Faults are reported against it.</summary>
    public string OwnerId { get; }
    public string EntityName { get; }
    public Type EntityType { get; }
    public PipelineStage Stage { get; }
    public int Order { get; }

    /// <summary>Stable name (for durable async deliveries and logs), for example <c>sample:WelcomeHandler</c>.</summary>
    public string HandlerName { get; }

    /// <summary>Takes a <see cref="WriteEvent{T}"/> of <see cref="EntityType"/>.</summary>
    public Func<object, CancellationToken, Task> Invoke { get; }

    /// <summary>
    /// Which writes the handler wants (operation, actor), decided on the writer thread before the handler is called;
    /// null for all. A write it does not want skips the call entirely (no thread hop, no image copies), which is
    /// what keeps bulk imports fast when a handler only acts on some writes. Must be cheap and must not throw.
    /// </summary>
    public Func<ChangeOperation, string, bool>? Wants { get; private init; }

    /// <summary>True when the handler is to be called for this write.</summary>
    internal bool Applies(ChangeOperation operation, string actor)
    {
        if (Wants is not { } wants)
        {
            return true;
        }

        try
        {
            return wants(operation, actor);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return true; // a faulty filter must not hide writes from its handler
        }
    }

    public static HandlerRegistration Create<T>(string ownerId, string entityName, PipelineStage stage, int order,
        string handlerName, Func<WriteEvent<T>, CancellationToken, Task> handler)
        where T : class, IEntity
    {
        ArgumentNullException.ThrowIfNull(handler);
        return new HandlerRegistration(ownerId, entityName, typeof(T), stage, order, handlerName,
            (e, ct) => handler((WriteEvent<T>)e, ct));
    }

    /// <summary>As <see cref="Create{T}(string, string, PipelineStage, int, string, Func{WriteEvent{T}, CancellationToken, Task})"/>, called only for the writes <paramref name="wants"/> accepts.</summary>
    public static HandlerRegistration Create<T>(string ownerId, string entityName, PipelineStage stage, int order,
        string handlerName, Func<WriteEvent<T>, CancellationToken, Task> handler, Func<ChangeOperation, string, bool> wants)
        where T : class, IEntity
    {
        ArgumentNullException.ThrowIfNull(wants);
        return new HandlerRegistration(ownerId, entityName, typeof(T), stage, order, handlerName,
            (e, ct) => (handler ?? throw new ArgumentNullException(nameof(handler)))((WriteEvent<T>)e, ct)) { Wants = wants };
    }
}

/// <summary>Where handlers are registered; disposing the returned token unregisters the handler.</summary>
public interface IWriteHandlerRegistry
{
    IDisposable Register(HandlerRegistration registration);
}

/// <summary>
/// Told about every handler outcome so the plugin host can run its fault breaker
/// (repeated failures mark a plugin Malfunctioned and unregister its handlers).
/// </summary>
public interface IHandlerFaultObserver
{
    void OnHandlerSucceeded(string ownerId, string handlerName);

    /// <summary><paramref name="error"/> is a <see cref="TimeoutException"/> when the handler hung past its budget.</summary>
    void OnHandlerFailed(string ownerId, string handlerName, Exception error);
}
