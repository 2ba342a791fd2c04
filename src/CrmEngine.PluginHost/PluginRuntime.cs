using CrmEngine.Abstractions.Plugins;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.PluginHost;

/// <summary>One plugin as the manager runs it: its verdict, load context, services, registrations and workers.</summary>
internal sealed class PluginRuntime(PluginCandidate candidate)
{
    private readonly object _gate = new();
    private PluginState _state = PluginState.Disabled;
    private string? _reason = "not started";

    public PluginCandidate Candidate { get; } = candidate;
    public string Id => Candidate.Id;
    public PluginManifest? Manifest => Candidate.Manifest;

    public PluginLoader? Loader { get; set; }
    public CrmPlugin? Plugin { get; set; }
    public ServiceProvider? Services { get; set; }
    public IPluginContext? Context { get; set; }

    /// <summary>The store handed to the plugin; revoked when it is stopped or Malfunctioned.</summary>
    public RevocableCrmStore? Store { get; set; }
    public PluginBuilder? Builder { get; set; }
    public List<IDisposable> Registrations { get; } = [];
    public CancellationTokenSource? WorkerCancellation { get; set; }
    public List<Task> WorkerTasks { get; } = [];

    /// <summary>Set once the plugin is being stopped (shutdown or breaker): handler deliveries are dropped.</summary>
    public bool Stopping { get; private set; }

    public bool AcceptsCalls
    {
        get
        {
            lock (_gate)
            {
                return _state == PluginState.Active && !Stopping;
            }
        }
    }

    public PluginState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    public void Set(PluginState state, string? reason)
    {
        lock (_gate)
        {
            _state = state;
            _reason = state == PluginState.Active ? null : reason;
        }
    }

    /// <summary>Moves an Active plugin to stopping (optionally to a new state); false when it was not active or already stopping.</summary>
    public bool TryBeginStop(PluginState? newState, string? reason)
    {
        lock (_gate)
        {
            if (_state != PluginState.Active || Stopping)
            {
                return false;
            }

            Stopping = true;
            if (newState is { } s)
            {
                _state = s;
                _reason = reason;
            }

            return true;
        }
    }

    /// <summary>
    /// Starts the workers (once) when the plugin is active and not stopping, under the same lock as
    /// <see cref="TryBeginStop"/>: a stop that begins later sees <see cref="WorkerCancellation"/> and the tasks.
    /// </summary>
    public bool TryStartWorkers(Func<CancellationToken, IReadOnlyList<Task>> start)
    {
        lock (_gate)
        {
            if (_state != PluginState.Active || Stopping || WorkerCancellation is not null)
            {
                return false;
            }

            var cancellation = new CancellationTokenSource();
            WorkerCancellation = cancellation;
            WorkerTasks.AddRange(start(cancellation.Token));
            return true;
        }
    }

    public PluginInfo ToInfo()
    {
        lock (_gate)
        {
            return Candidate.ToInfo(_state, _reason);
        }
    }
}
