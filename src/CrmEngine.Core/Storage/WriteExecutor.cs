using System.Collections.Concurrent;

namespace CrmEngine.Core.Storage;

/// <summary>
/// The one thread that writes to the database. LiteDB binds a transaction to the OS thread
/// that began it, so every write (and everything that must see a write's uncommitted state)
/// runs here, one work item at a time, synchronously. Nothing on this thread ever awaits.
/// <para>
/// Group acknowledgement: each work item commits its own transaction, but callers are told only
/// after <c>beforeAcknowledge</c> (the durable flush of the journal) has run. When writes queue
/// up, one flush covers all of them, so a burst of single writes costs one disk sync, not one each.
/// </para>
/// </summary>
internal sealed class WriteExecutor : IDisposable
{
    private const int MaxGroup = 256;

    private readonly BlockingCollection<Func<(Action Ack, Action<Exception> Fail)>> _queue =
        new(new ConcurrentQueue<Func<(Action Ack, Action<Exception> Fail)>>());
    private readonly Thread _thread;
    private readonly Func<Action?> _beforeAcknowledge;
    private int _disposed;

    public WriteExecutor(string name, Func<Action?> beforeAcknowledge)
    {
        _beforeAcknowledge = beforeAcknowledge;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>True when the caller is the writer thread itself.</summary>
    public bool IsWriterThread => Thread.CurrentThread == _thread;

    /// <summary>Queues <paramref name="work"/>; the task completes (off the writer thread) once its result is durable.</summary>
    public Task<T> Enqueue<T>(Func<T> work)
    {
        if (IsWriterThread)
        {
            throw new InvalidOperationException(
                "The store was called from its own writer thread (for example from a fault observer); that would deadlock.");
        }

        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _queue.Add(() =>
            {
                try
                {
                    var result = work();
                    return (() => completion.TrySetResult(result), ex => completion.TrySetException(ex));
                }
                catch (Exception ex)
                {
                    return (() => completion.TrySetException(ex), _ => completion.TrySetException(ex));
                }
            });
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(CrmDatabase), "The store is shutting down and accepts no more writes.");
        }

        return completion.Task;
    }

    private void Run()
    {
        var done = new List<(Action Ack, Action<Exception> Fail)>();
        while (true)
        {
            Func<(Action, Action<Exception>)>? item;
            if (done.Count > 0)
            {
                if (done.Count >= MaxGroup || !_queue.TryTake(out item))
                {
                    Acknowledge(done);
                    continue;
                }
            }
            else if (!_queue.TryTake(out item, Timeout.Infinite))
            {
                break; // completed and empty
            }

            done.Add(item());
        }

        Acknowledge(done);
    }

    private void Acknowledge(List<(Action Ack, Action<Exception> Fail)> done)
    {
        if (done.Count == 0)
        {
            return;
        }

        Exception? flushError = null;
        try
        {
            _beforeAcknowledge()?.Invoke();
        }
        catch (Exception ex)
        {
            flushError = ex;
        }

        foreach (var (ack, fail) in done)
        {
            if (flushError is null)
            {
                ack();
            }
            else
            {
                fail(flushError);
            }
        }

        done.Clear();
    }

    /// <summary>Stops taking work, runs everything already queued (no acknowledged write is lost), then ends the thread.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.CompleteAdding();
        if (!IsWriterThread)
        {
            _thread.Join();
        }

        _queue.Dispose();
    }
}
