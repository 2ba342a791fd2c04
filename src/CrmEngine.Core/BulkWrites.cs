using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core;

public enum BulkOperation
{
    Create,
    /// <summary>Replace; the entity carries the version it read (optimistic concurrency as for UpdateAsync).</summary>
    Update,
}

/// <summary>One write of a bulk call.</summary>
public sealed record BulkWrite<T>(BulkOperation Operation, T Entity) where T : class, IEntity;

/// <summary>The outcome of one write of a bulk call, by its position in the call: the stored image, or why it was refused.</summary>
public sealed record BulkWriteResult<T>(int Index, T? Stored, Exception? Error) where T : class, IEntity
{
    public bool Succeeded => Error is null;
}

public static class BulkWriteExtensions
{
    /// <summary>
    /// Runs many creates and updates, each through the full pipeline (handlers, change feed, audit, async deliveries),
    /// and reports each one's outcome: a write that is refused (validation, version conflict, a handler's refusal) is
    /// reported and the others are stored. Import and merge use this; it is the engine's fast bulk path.
    /// </summary>
    public static async Task<IReadOnlyList<BulkWriteResult<T>>> WriteManyAsync<T>(this IEntitySet<T> set,
        IReadOnlyList<BulkWrite<T>> writes, CancellationToken cancellationToken = default) where T : class, IEntity, new()
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(writes);

        // The engine's own sets: batched (one transaction and one disk sync per batch), see EntitySet<T>.
        if (set is EntitySet<T> engine && await engine.TryWriteManyAsync(writes, cancellationToken).ConfigureAwait(false) is { } batched)
        {
            return batched;
        }

        // One call per write: correct on any set, and inside a synchronous handler (the open transaction).
        var results = new List<BulkWriteResult<T>>(writes.Count);
        for (var i = 0; i < writes.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var w = writes[i];
            try
            {
                var stored = w.Operation == BulkOperation.Create
                    ? await set.CreateAsync(w.Entity, cancellationToken).ConfigureAwait(false)
                    : await set.UpdateAsync(w.Entity, cancellationToken).ConfigureAwait(false);
                results.Add(new BulkWriteResult<T>(i, stored, null));
            }
            catch (Exception ex) when (ex is StoreException or ArgumentException)
            {
                results.Add(new BulkWriteResult<T>(i, null, ex));
            }
        }

        return results;
    }
}
