using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Abstractions.Pipeline;

/// <summary>
/// Where a handler runs. Validate, PreOperation and PostOperation run inside the write's
/// transaction (a throw rolls the whole write back); Async runs after commit, durably,
/// retried with backoff and parked with its error after the last try.
/// </summary>
public enum PipelineStage
{
    /// <summary>Inspect the proposed image; call <see cref="WriteEvent{T}.Reject"/> to refuse the write.</summary>
    Validate,
    /// <summary>Change <see cref="WriteEvent{T}.After"/> before it is stored (set an owner, a score).</summary>
    PreOperation,
    /// <summary>After the write, same transaction: writes made here commit or roll back with it.</summary>
    PostOperation,
    /// <summary>After commit, at least once: handlers must be idempotent (use <see cref="WriteEvent{T}.Sequence"/>).</summary>
    Async,
}

/// <summary>What a handler sees of one write: the images before and after, and how it came about.</summary>
public sealed class WriteEvent<T> where T : class, IEntity
{
    private readonly List<ValidationError> _errors = [];

    public WriteEvent(string entity, string entityId, ChangeOperation operation, T? before, T? after,
        PipelineStage stage, string actor, IReadOnlyList<string> chain, long sequence)
    {
        Entity = entity;
        EntityId = entityId;
        Operation = operation;
        Before = before;
        After = after;
        Stage = stage;
        Actor = actor;
        Chain = chain;
        Sequence = sequence;
    }

    public string Entity { get; }
    public string EntityId { get; }
    public ChangeOperation Operation { get; }

    /// <summary>The stored image before the write (null on create). A copy: changing it has no effect.</summary>
    public T? Before { get; }

    /// <summary>The image being written (null on delete). Changes made in PreOperation are stored.</summary>
    public T? After { get; }

    public PipelineStage Stage { get; }

    /// <summary>Who made the write: a user, <c>plugin:id</c>, <c>rule:name</c>, <c>system:...</c>.</summary>
    public string Actor { get; }

    /// <summary>The chain of writes that led here, outermost first, as <c>entity:operation:id</c>.</summary>
    public IReadOnlyList<string> Chain { get; }

    /// <summary>Change-feed sequence of this write; 0 before the write (Validate, PreOperation).</summary>
    public long Sequence { get; }

    public IReadOnlyList<ValidationError> Errors => _errors;

    /// <summary>Refuses the write with a message the caller sees. Valid in the Validate stage.</summary>
    public void Reject(string field, string message)
    {
        if (Stage != PipelineStage.Validate)
        {
            throw new InvalidOperationException("Reject is only valid in the Validate stage.");
        }

        _errors.Add(new ValidationError(field, message));
    }
}

/// <summary>A handler of writes to one entity at one stage, registered by a plugin.</summary>
public interface IWriteHandler<T> where T : class, IEntity
{
    Task HandleAsync(WriteEvent<T> writeEvent, CancellationToken cancellationToken);
}
