using System.Collections.Concurrent;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core.Pipeline;

/// <summary>
/// The write a handler is running inside, carried by an <see cref="AsyncLocal{T}"/> into the
/// handler's code and everything it awaits.
/// <para>
/// Design: the transaction belongs to the writer thread, but handlers are plugin code that may
/// await or hang. So a synchronous-stage handler runs as a task off the writer thread while the
/// writer thread waits for it <em>and pumps</em> this scope's queue: every store call the handler
/// makes (read or write) is routed here and executed inline on the writer thread, inside the open
/// transaction (reads see the write's own uncommitted changes). When the handler overruns its budget
/// the scope is closed as abandoned: the write is rolled back, and any later call from the
/// handler fails instead of touching a transaction that no longer exists.
/// </para>
/// Async-stage handlers get a detached scope: no transaction, but the actor and the chain (for the
/// depth guard) still flow into the writes they make, which run as new top-level writes.
/// </summary>
internal sealed class WriteScope
{
    private static readonly AsyncLocal<WriteScope?> CurrentScope = new();

    private readonly ConcurrentQueue<(Action Run, Action<Exception> Fail)> _calls = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly object _gate = new();
    private int _state; // 0 open, 1 finished, 2 abandoned

    public WriteScope(CrmDatabase database, string actor, IReadOnlyList<string> chain, string handlerName, bool inTransaction)
    {
        Database = database;
        Actor = actor;
        Chain = chain;
        HandlerName = handlerName;
        InTransaction = inTransaction;
    }

    public static WriteScope? Current
    {
        get => CurrentScope.Value;
        set => CurrentScope.Value = value;
    }

    public CrmDatabase Database { get; }
    public string Actor { get; }
    public IReadOnlyList<string> Chain { get; }
    public string HandlerName { get; }
    public bool InTransaction { get; }

    /// <summary>Refuses calls from a handler that has finished or was abandoned.</summary>
    public void EnsureOpen()
    {
        var state = Volatile.Read(ref _state);
        if (state != 0)
        {
            throw new StoreException(state == 2
                ? $"Handler '{HandlerName}' called the store after it ran out of time and was abandoned; the call was refused."
                : $"Handler '{HandlerName}' called the store after it had finished (fire-and-forget work is not allowed); the call was refused.");
        }
    }

    /// <summary>Queues a call for the writer thread that is pumping this scope.</summary>
    public Task<T> Call<T>(Func<T> work)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            EnsureOpen();
            _calls.Enqueue((() =>
            {
                try
                {
                    completion.TrySetResult(work());
                }
                catch (Exception ex)
                {
                    completion.TrySetException(ex);
                }
            }, ex => completion.TrySetException(ex)));
        }

        _signal.Release();
        return completion.Task;
    }

    /// <summary>Writer thread: runs one queued call, if any.</summary>
    public bool TryRunNext()
    {
        if (!_calls.TryDequeue(out var call))
        {
            return false;
        }

        call.Run();
        return true;
    }

    public void Wake() => _signal.Release();

    private int _started;

    /// <summary>Set by the handler's task when it begins running.</summary>
    public bool Started => Volatile.Read(ref _started) != 0;

    public void MarkStarted()
    {
        Volatile.Write(ref _started, 1);
    }

    public void Wait(TimeSpan timeout) => _signal.Wait(timeout);

    /// <summary>Closes the scope; calls still queued are refused.</summary>
    public void Close(bool abandoned)
    {
        lock (_gate)
        {
            _state = abandoned ? 2 : 1;
        }

        while (_calls.TryDequeue(out var call))
        {
            try
            {
                EnsureOpen();
            }
            catch (StoreException refused)
            {
                call.Fail(refused);
            }
        }
    }

    public bool Abandoned => Volatile.Read(ref _state) == 2;
}
