using CrmEngine.Abstractions.Model;
using CrmEngine.Api;
using CrmEngine.Core.Storage;

namespace CrmEngine.DataExchange.Customers;

/// <summary>A merged-away customer id and the id it was merged into (collection <c>dataexchange_redirects</c>, id = removed id).</summary>
public sealed class CustomerRedirect : Entity
{
    public string TargetId { get; set; } = "";
    public DateTimeOffset MergedAt { get; set; }
    public string MergedBy { get; set; } = "";
}

/// <summary>Resolves merged-away ids from the stored redirects, following chains (A merged into B, B into C).</summary>
internal sealed class CustomerRedirects : ICustomerRedirects
{
    public const string Owner = "dataexchange";
    public const string Collection = "redirects";
    private const int MaxHops = 32;
    private readonly IStoreProvider _stores;

    public CustomerRedirects(IStoreProvider stores) => _stores = stores;

    public async Task<string?> ResolveAsync(string customerId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(customerId);
        var set = _stores.ForActor("system:" + Owner, Owner).Collection<CustomerRedirect>(Collection);
        string? target = null;
        var current = customerId;
        for (var hop = 0; hop < MaxHops; hop++)
        {
            var redirect = await set.GetAsync(current, cancellationToken);
            if (redirect is null || redirect.TargetId == customerId)
            {
                break;
            }

            target = current = redirect.TargetId;
        }

        return target;
    }
}
