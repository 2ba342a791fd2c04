using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;

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

    public static HandlerRegistration Create<T>(string ownerId, string entityName, PipelineStage stage, int order,
        string handlerName, Func<WriteEvent<T>, CancellationToken, Task> handler)
        where T : class, IEntity
    {
        ArgumentNullException.ThrowIfNull(handler);
        return new HandlerRegistration(ownerId, entityName, typeof(T), stage, order, handlerName,
            (e, ct) => handler((WriteEvent<T>)e, ct));
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
