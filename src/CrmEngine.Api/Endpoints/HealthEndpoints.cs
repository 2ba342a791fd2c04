using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Api.Endpoints;

/// <summary>The answer of <c>/health</c>: the overall status and one entry per part (counts and states only, no data).</summary>
public sealed record HealthAnswer(string Status, IReadOnlyDictionary<string, HealthReport> Checks);

/// <summary><c>GET /health</c>, no key needed: 200 when ok or degraded, 503 when any part is down.</summary>
internal static class HealthEndpoints
{
    // A contributor that does not answer within this time is reported down rather than holding the probe.
    private static readonly TimeSpan ContributorTimeout = TimeSpan.FromSeconds(5);

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/health", CheckAsync)
            .AllowAnonymous()
            .WithName("GetHealth")
            .WithTags("Health")
            .WithSummary("Engine health: store, plugins, scheduler and every registered contributor (outbox, webhooks ...)")
            .Produces<HealthAnswer>(StatusCodes.Status200OK)
            .Produces<HealthAnswer>(StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task<IResult> CheckAsync(IEnumerable<IHealthContributor> contributors, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var logger = loggers.CreateLogger("CrmEngine.Api.Health");
        var checks = new SortedDictionary<string, HealthReport>(StringComparer.Ordinal);
        var tasks = contributors.Select(async c => (c.Name, Report: await RunAsync(c, logger, cancellationToken))).ToList();
        foreach (var (name, report) in await Task.WhenAll(tasks))
        {
            checks[name] = report;
        }

        var overall = checks.Values.Any(r => r.Status == HealthStatus.Down) ? HealthStatus.Down
            : checks.Values.Any(r => r.Status == HealthStatus.Degraded) ? HealthStatus.Degraded
            : HealthStatus.Ok;
        return TypedResults.Json(new HealthAnswer(overall, checks), ApiJson.Options,
            statusCode: overall == HealthStatus.Down ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK);
    }

    private static async Task<HealthReport> RunAsync(IHealthContributor contributor, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ContributorTimeout);
            var report = await contributor.CheckAsync(timeout.Token).WaitAsync(ContributorTimeout, cancellationToken);
            return report.Status is HealthStatus.Ok or HealthStatus.Degraded or HealthStatus.Down
                ? report
                : new HealthReport(HealthStatus.Down, new Dictionary<string, object?> { ["error"] = $"unknown status '{report.Status}'" });
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Health check {Check} failed", contributor.Name);
            var error = ex is TimeoutException or OperationCanceledException ? $"no answer within {ContributorTimeout.TotalSeconds:0} s" : ex.GetType().Name + ": " + ex.Message;
            return new HealthReport(HealthStatus.Down, new Dictionary<string, object?> { ["error"] = error });
        }
    }
}

internal static class HealthStatus
{
    public const string Ok = "ok";
    public const string Degraded = "degraded";
    public const string Down = "down";
}

/// <summary>The store answers a read: the newest change sequence (a number, not data).</summary>
internal sealed class StoreHealth(IChangeFeed feed) : IHealthContributor
{
    public string Name => "store";

    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var last = await feed.LastSequenceAsync(cancellationToken);
        return new HealthReport(HealthStatus.Ok, new Dictionary<string, object?> { ["lastSequence"] = last });
    }
}

/// <summary>Plugins per state; degraded when one is Malfunctioned.</summary>
internal sealed class PluginsHealth(IServiceProvider services) : IHealthContributor
{
    public string Name => "plugins";

    public Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var plugins = services.GetService<PluginManager>()?.Plugins ?? [];
        var details = new Dictionary<string, object?> { ["total"] = plugins.Count };
        foreach (var state in Enum.GetValues<PluginState>())
        {
            details[char.ToLowerInvariant(state.ToString()[0]) + state.ToString()[1..]] = plugins.Count(p => p.State == state);
        }

        var status = plugins.Any(p => p.State == PluginState.Malfunctioned) ? HealthStatus.Degraded : HealthStatus.Ok;
        return Task.FromResult(new HealthReport(status, details));
    }
}

/// <summary>The scheduler's counts; degraded when jobs are parked or a due job waits more than five minutes.</summary>
internal sealed class SchedulerHealthContributor(IServiceProvider services) : IHealthContributor
{
    private static readonly TimeSpan LateAfter = TimeSpan.FromMinutes(5);

    public string Name => "scheduler";

    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        if (services.GetService<JobAdministration>() is not { } jobs)
        {
            return new HealthReport(HealthStatus.Ok, new Dictionary<string, object?> { ["enabled"] = false });
        }

        var h = await jobs.HealthAsync(cancellationToken);
        var details = new Dictionary<string, object?>
        {
            ["enabled"] = true,
            ["due"] = h.Due,
            ["running"] = h.Running,
            ["parked"] = h.Parked,
            ["paused"] = h.Paused,
            ["oldestOverdueSeconds"] = h.OldestOverdue is { } o ? Math.Round(o.TotalSeconds) : null,
            ["nextDue"] = h.NextDue,
        };
        var late = h.OldestOverdue is { } overdue && overdue > LateAfter;
        return new HealthReport(h.Parked > 0 || late ? HealthStatus.Degraded : HealthStatus.Ok, details);
    }
}
