using System.Collections.Concurrent;

namespace CrmEngine.Core.Storage;

/// <summary>
/// The one thread that writes to the database. LiteDB binds a transaction to the OS thread
/// that began it, so every write (and everything that must see a write's uncommitted state)
/// runs here, one work item at a time, synchronously. Nothing on this thread ever awaits.
/// </summary>
internal sealed class WriteExecutor : IDisposable
{
    private readonly BlockingCollection<Action> _queue = new(new ConcurrentQueue<Action>());
    private readonly Thread _thread;
    private int _disposed;

    public WriteExecutor(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>True when the caller is the writer thread itself.</summary>
    public bool IsWriterThread => Thread.CurrentThread == _thread;

    /// <summary>Queues <paramref name="work"/>; the task completes (off the writer thread) with its result.</summary>
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
                    completion.TrySetResult(work());
                }
                catch (Exception ex)
                {
                    completion.TrySetException(ex);
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
        foreach (var item in _queue.GetConsumingEnumerable())
        {
            item();
        }
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
