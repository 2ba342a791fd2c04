using CrmEngine.Abstractions.Pipeline;

namespace CrmEngine.Core.Pipeline;

/// <summary>The handlers registered now, per entity and stage, in (order, registration) order.</summary>
public sealed class WriteHandlerRegistry : IWriteHandlerRegistry
{
    private readonly object _gate = new();
    private readonly List<(HandlerRegistration Registration, long Seq)> _items = [];
    private long _seq;
    private volatile Dictionary<(string, PipelineStage), HandlerRegistration[]> _snapshot = [];

    /// <summary>Raised after a handler is registered (the async dispatcher looks for deliveries it can now make).</summary>
    public event Action<HandlerRegistration>? Registered;

    public IDisposable Register(HandlerRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        long seq;
        lock (_gate)
        {
            seq = ++_seq;
            _items.Add((registration, seq));
            Rebuild();
        }

        Registered?.Invoke(registration);
        return new Token(this, seq);
    }

    /// <summary>Handlers of one entity at one stage, in order.</summary>
    public IReadOnlyList<HandlerRegistration> For(string entityName, PipelineStage stage) =>
        _snapshot.TryGetValue((entityName, stage), out var list) ? list : [];

    /// <summary>The async handler currently registered under <paramref name="handlerName"/> for <paramref name="entityName"/>, if any.</summary>
    public HandlerRegistration? FindAsync(string entityName, string handlerName) =>
        For(entityName, PipelineStage.Async).FirstOrDefault(h => h.HandlerName == handlerName);

    /// <summary>Names of every async handler registered now.</summary>
    public IReadOnlyList<string> AsyncHandlerNames() =>
        _snapshot.Where(p => p.Key.Item2 == PipelineStage.Async).SelectMany(p => p.Value).Select(h => h.HandlerName).Distinct().ToList();

    private void Unregister(long seq)
    {
        lock (_gate)
        {
            _items.RemoveAll(i => i.Seq == seq);
            Rebuild();
        }
    }

    private void Rebuild() =>
        _snapshot = _items
            .GroupBy(i => (i.Registration.EntityName, i.Registration.Stage))
            .ToDictionary(g => g.Key, g => g.OrderBy(i => i.Registration.Order).ThenBy(i => i.Seq).Select(i => i.Registration).ToArray());

    private sealed class Token(WriteHandlerRegistry owner, long seq) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                owner.Unregister(seq);
            }
        }
    }
}
