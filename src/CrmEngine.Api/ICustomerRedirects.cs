namespace CrmEngine.Api;

/// <summary>
/// Where a merged-away customer id now points. Registered by the data exchange (merge); the customer endpoints
/// answer a request for a removed id with a redirect to the kept customer instead of 404.
/// </summary>
public interface ICustomerRedirects
{
    /// <summary>The id that <paramref name="customerId"/> was merged into (following chains), or null.</summary>
    Task<string?> ResolveAsync(string customerId, CancellationToken cancellationToken = default);
}

/// <summary>
/// A named piece of engine state for <c>/health</c> (store, plugins, scheduler, outbox, webhooks). Registered in DI by
/// each concern; must answer quickly and expose no customer data.
/// </summary>
public interface IHealthContributor
{
    string Name { get; }

    Task<HealthReport> CheckAsync(CancellationToken cancellationToken);
}

/// <summary><paramref name="Status"/> is <c>ok</c>, <c>degraded</c> or <c>down</c>; details are counts and states only.</summary>
public sealed record HealthReport(string Status, IReadOnlyDictionary<string, object?> Details);
