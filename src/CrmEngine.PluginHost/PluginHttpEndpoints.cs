using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost;

/// <summary>One endpoint a plugin declared through <c>AddHttpEndpoint</c>.</summary>
public sealed record PluginEndpoint(string PluginId, PluginHttpEndpointDeclaration Declaration);

/// <summary>How a call to a plugin endpoint ended: the plugin's answer, or why there is none.</summary>
public sealed record PluginEndpointOutcome(PluginHttpResponse? Response, int FailureStatus, string? Failure)
{
    public bool Succeeded => Response is not null;
}

/// <summary>
/// The HTTP side of the plugin host for the API: which endpoints the Active plugins declared, and a guarded call
/// into one (the handler resolved from the plugin's own services in a scope per request, under the plugin call
/// timeout; a throw or timeout counts toward the plugin's fault breaker like a failing handler).
/// </summary>
public sealed class PluginHttpEndpoints(PluginManager manager, PluginFaultBreaker breaker, IOptions<PluginHostOptions> options,
    ILogger<PluginHttpEndpoints> logger)
{
    private readonly TimeSpan _timeout = options.Value.CallTimeout;

    /// <summary>The endpoints declared by every plugin that is Active now, in load order.</summary>
    public IReadOnlyList<PluginEndpoint> Declared()
    {
        var result = new List<PluginEndpoint>();
        foreach (var plugin in manager.Plugins.Where(p => p.State == PluginState.Active))
        {
            if (manager.ContextOf(plugin.Id)?.Services is not { } services)
            {
                continue;
            }

            try
            {
                result.AddRange(services.GetServices<PluginHttpEndpointDeclaration>().Select(d => new PluginEndpoint(plugin.Id, d)));
            }
            catch (ObjectDisposedException)
            {
                // Stopped meanwhile: its endpoints answer 503 through the catch-all.
            }
        }

        return result;
    }

    /// <summary>The plugin's state (null when no plugin folder has this id).</summary>
    public PluginInfo? Find(string pluginId) => manager.Find(pluginId);

    public async Task<PluginEndpointOutcome> InvokeAsync(PluginEndpoint endpoint, PluginHttpRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(request);
        var id = endpoint.PluginId;
        if (manager.Find(id) is not { State: PluginState.Active } || manager.ContextOf(id)?.Services is not { } services)
        {
            return Unavailable(id);
        }

        PluginHttpResponse? response = null;
        var what = $"HTTP endpoint {endpoint.Declaration.Method} {endpoint.Declaration.Pattern}";
        bool disposed = false;
        var result = await GuardedCall.RunAsync(id, what, async ct =>
        {
            AsyncServiceScope scope;
            try
            {
                scope = services.CreateAsyncScope();
            }
            catch (ObjectDisposedException)
            {
                disposed = true;
                return;
            }

            await using (scope)
            {
                var handler = (IPluginHttpHandler)scope.ServiceProvider.GetRequiredService(endpoint.Declaration.HandlerType);
                response = await handler.HandleAsync(request, ct);
            }
        }, _timeout, logger, cancellationToken);

        if (disposed || result.Error is ObjectDisposedException)
        {
            return Unavailable(id);
        }

        switch (result.Outcome)
        {
            case CallOutcome.Succeeded when response is not null:
                return new PluginEndpointOutcome(response, 0, null);
            case CallOutcome.Succeeded:
                breaker.RecordFailure(id, what + " returned no response");
                return new PluginEndpointOutcome(null, 500, $"plugin {id}: {what} returned no response");
            case CallOutcome.Cancelled:
                return new PluginEndpointOutcome(null, 499, "the request was cancelled");
            case CallOutcome.TimedOut:
            default:
                // A time-out is a failure like a throw (500); the breaker counts both.
                breaker.RecordFailure(id, result.Description);
                return new PluginEndpointOutcome(null, 500, $"plugin {id}: {result.Description}");
        }
    }

    private PluginEndpointOutcome Unavailable(string id)
    {
        var info = manager.Find(id);
        var state = info is null ? "unknown" : info.State.ToString();
        var reason = info?.Reason is { } r ? $" ({r})" : "";
        return new PluginEndpointOutcome(null, 503, $"plugin {id} is {state}{reason}");
    }
}
