using CrmEngine.Core.Pipeline;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost;

/// <summary>
/// Counts plugin failures (handler throws and time-outs reported by the pipeline, worker crashes)
/// in a sliding window. When a plugin reaches <see cref="PluginHostOptions.FailureThreshold"/>
/// failures within <see cref="PluginHostOptions.FailureWindow"/>, the breaker trips once and the
/// plugin manager marks the plugin Malfunctioned. Owners that are not plugins (core, rules) are ignored.
/// </summary>
public sealed class PluginFaultBreaker : IHandlerFaultObserver
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Queue<DateTimeOffset>> _failures = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _tracked = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _tripped = new(StringComparer.OrdinalIgnoreCase);
    private readonly PluginHostOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public PluginFaultBreaker(IOptions<PluginHostOptions> options, TimeProvider time, ILogger<PluginFaultBreaker> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <summary>Raised once per plugin when it trips: plugin id and the one-line reason.</summary>
    internal event Action<string, string>? Tripped;

    internal void Track(string pluginId)
    {
        lock (_gate)
        {
            _tracked.Add(pluginId);
            _tripped.Remove(pluginId);
            _failures.Remove(pluginId);
        }
    }

    internal void Untrack(string pluginId)
    {
        lock (_gate)
        {
            _tracked.Remove(pluginId);
            _failures.Remove(pluginId);
        }
    }

    /// <summary>Failures of <paramref name="pluginId"/> still inside the window.</summary>
    public int FailureCount(string pluginId)
    {
        lock (_gate)
        {
            return _failures.TryGetValue(pluginId, out var q) ? Prune(q, _time.GetUtcNow()) : 0;
        }
    }

    public void OnHandlerSucceeded(string ownerId, string handlerName)
    {
        // Success does not clear the window: a plugin failing 5 times in 5 minutes between successes still trips.
    }

    public void OnHandlerFailed(string ownerId, string handlerName, Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var what = error is TimeoutException
            ? $"handler {handlerName} timed out"
            : $"handler {handlerName} threw {GuardedCall.Describe(error)}";
        RecordFailure(ownerId, what);
    }

    /// <summary>Counts one failure of a plugin; <paramref name="description"/> is kept as the last failure in the reason.</summary>
    public void RecordFailure(string pluginId, string description)
    {
        string? reason = null;
        lock (_gate)
        {
            if (!_tracked.Contains(pluginId) || _tripped.Contains(pluginId))
            {
                return;
            }

            if (!_failures.TryGetValue(pluginId, out var q))
            {
                _failures[pluginId] = q = new Queue<DateTimeOffset>();
            }

            var now = _time.GetUtcNow();
            q.Enqueue(now);
            var count = Prune(q, now);
            _logger.LogWarning("Plugin {PluginId}: {Failure} ({Count} of {Threshold} failures within {Window})",
                pluginId, description, count, _options.FailureThreshold, _options.FailureWindow);
            if (count >= _options.FailureThreshold)
            {
                _tripped.Add(pluginId);
                reason = $"{count} failures within {_options.FailureWindow}; last: {description}";
            }
        }

        if (reason is not null)
        {
            Tripped?.Invoke(pluginId, reason);
        }
    }

    private int Prune(Queue<DateTimeOffset> q, DateTimeOffset now)
    {
        while (q.Count > 0 && now - q.Peek() > _options.FailureWindow)
        {
            q.Dequeue();
        }

        return q.Count;
    }
}
