using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Core.Storage;

/// <summary>One unit of work for the writer thread.</summary>
internal abstract class WorkItem
{
    /// <summary>True for transactional writes that may share one LiteDB transaction with others (group commit).</summary>
    public abstract bool Groupable { get; }

    /// <summary>Runs the work; its result or error is kept until <see cref="Acknowledge"/>.</summary>
    public abstract void Execute(WriteTransaction? tx);

    public Exception? Error { get; set; }

    /// <summary>Tells the caller: the result, or <see cref="Error"/>.</summary>
    public abstract void Acknowledge();

    /// <summary>For a batch: the writes that join the group one by one, each with its own outcome; null for a single write.</summary>
    public virtual IReadOnlyList<WorkItem>? Parts => null;
}

/// <summary>
/// Many writes handed over at once (bulk writes): they always land in the same group, so they share one
/// transaction and one disk sync, while each keeps its own outcome. Completes once every part is acknowledged.
/// </summary>
internal sealed class BatchWorkItem<T>(IReadOnlyList<WorkItem<T>> parts) : WorkItem
{
    private readonly TaskCompletionSource<IReadOnlyList<WorkItem<T>>> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<IReadOnlyList<WorkItem<T>>> Task => _completion.Task;

    public override bool Groupable => true;

    public override IReadOnlyList<WorkItem>? Parts => parts;

    public override void Execute(WriteTransaction? tx) =>
        throw new InvalidOperationException("A batch runs as its parts.");

    public override void Acknowledge() => _completion.TrySetResult(parts);
}

internal sealed class WorkItem<T>(Func<WriteTransaction?, T> work, bool groupable) : WorkItem
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _result;

    public Task<T> Task => _completion.Task;

    /// <summary>The outcome once acknowledged (parts of a batch are read this way instead of awaiting each).</summary>
    public T? Result => _result;

    public override bool Groupable => groupable;

    public override void Execute(WriteTransaction? tx)
    {
        Error = null;
        _result = work(tx);
    }

    public override void Acknowledge()
    {
        if (Error is null)
        {
            _completion.TrySetResult(_result!);
        }
        else
        {
            _completion.TrySetException(Error);
        }
    }
}

/// <summary>
/// The one thread that writes to the database. LiteDB binds a transaction to the OS thread that
/// began it, so every write (and everything that must see a write's uncommitted state) runs here,
/// synchronously; nothing on this thread ever awaits. Writes that queue up while one runs are taken
/// together and handed to <c>processGroup</c> (group commit: one transaction and one disk sync for
/// many writes); items that are not groupable (backup) run alone.
/// </summary>
internal sealed class WriteExecutor : IDisposable
{
    private const int MaxGroup = 128;

    private readonly BlockingCollection<WorkItem> _queue = new(new ConcurrentQueue<WorkItem>());
    private readonly Thread _thread;
    private readonly Action<List<WorkItem>> _processGroup;
    private readonly ILogger _logger;
    private readonly TimeSpan _stopTimeout;
    private int _disposed;
    private int _groupsDone;

    /// <param name="name">Thread name.</param>
    /// <param name="processGroup">Runs one group (sets each item's error).</param>
    /// <param name="logger">Where a stop that did not finish in time is reported.</param>
    /// <param name="stopTimeout">How long <see cref="Dispose"/> waits for queued work per item in progress.</param>
    public WriteExecutor(string name, Action<List<WorkItem>> processGroup, ILogger logger, TimeSpan stopTimeout)
    {
        _processGroup = processGroup;
        _logger = logger;
        _stopTimeout = stopTimeout;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>True when the caller is the writer thread itself.</summary>
    public bool IsWriterThread => Thread.CurrentThread == _thread;

    public Task<T> Enqueue<T>(Func<WriteTransaction?, T> work, bool groupable)
    {
        if (IsWriterThread)
        {
            throw new InvalidOperationException(
                "The store was called from its own writer thread (for example from a fault observer); that would deadlock.");
        }

        var item = new WorkItem<T>(work, groupable);
        Add(item);
        return item.Task;
    }

    /// <summary>Queues many writes that run in one group (one transaction, one disk sync), each with its own outcome.</summary>
    public Task<IReadOnlyList<WorkItem<T>>> EnqueueBatch<T>(IReadOnlyList<Func<WriteTransaction?, T>> works)
    {
        if (IsWriterThread)
        {
            throw new InvalidOperationException(
                "The store was called from its own writer thread (for example from a fault observer); that would deadlock.");
        }

        var batch = new BatchWorkItem<T>(works.Select(w => new WorkItem<T>(w, groupable: true)).ToArray());
        Add(batch);
        return batch.Task;
    }

    private void Add(WorkItem item)
    {
        try
        {
            _queue.Add(item);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(CrmDatabase), "The store is shutting down and accepts no more writes.");
        }
    }

    private void Run()
    {
        WorkItem? held = null;
        var group = new List<WorkItem>();
        var batches = new List<WorkItem>();
        while (true)
        {
            WorkItem? first = held;
            held = null;
            if (first is null && !_queue.TryTake(out first, Timeout.Infinite))
            {
                break; // completed and empty
            }

            group.Clear();
            batches.Clear();
            Take(first);
            if (first.Groupable)
            {
                // A batch is always taken whole, so a group may exceed MaxGroup by one batch.
                while (group.Count < MaxGroup && _queue.TryTake(out var next))
                {
                    if (!next.Groupable)
                    {
                        held = next;
                        break;
                    }

                    Take(next);
                }
            }

            try
            {
                _processGroup(group);
            }
            catch (Exception ex)
            {
                foreach (var item in group)
                {
                    item.Error ??= ex;
                }
            }

            foreach (var item in group)
            {
                item.Acknowledge();
            }

            foreach (var batch in batches)
            {
                batch.Acknowledge();
            }

            Interlocked.Increment(ref _groupsDone);
        }

        void Take(WorkItem item)
        {
            if (item.Parts is { } parts)
            {
                group.AddRange(parts);
                batches.Add(item);
            }
            else
            {
                group.Add(item);
            }
        }
    }

    /// <summary>
    /// Stops taking work and runs everything already queued (no acknowledged write is lost), then ends
    /// the thread. The wait is bounded: while groups keep finishing it goes on; when none finished
    /// within the stop timeout (a hung disk, a stuck writer) it gives up with a logged error and
    /// returns false; writes still queued then are never acknowledged.
    /// </summary>
    public bool Stop()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return true;
        }

        _queue.CompleteAdding();
        Interlocked.Exchange(ref _groupsDone, 0);
        if (IsWriterThread)
        {
            return true;
        }

        while (!_thread.Join(_stopTimeout))
        {
            var done = Interlocked.Exchange(ref _groupsDone, 0);
            if (done == 0)
            {
                _logger.LogError(
                    "The store writer did not finish within {Timeout} at shutdown ({Queued} write(s) still queued); giving up. Unacknowledged writes are not stored; the journal is replayed at next start.",
                    _stopTimeout, _queue.Count);
                return false;
            }
        }

        _queue.Dispose();
        return true;
    }

    public void Dispose() => Stop();
}
