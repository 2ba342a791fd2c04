using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Resources;

/// <summary>The decision in force for one purpose and channel, and the ledger entry that made it.</summary>
internal sealed record ConsentDecision(string Purpose, ConsentChannel Channel, bool Granted, DateTimeOffset At, string Source, string EntryId);

/// <summary>One page of a customer's consent ledger (in recording order), the decisions in force over the whole ledger, and the next page.</summary>
internal sealed record ConsentLedger(string CustomerId, IReadOnlyList<ConsentEntry> Entries, IReadOnlyList<ConsentDecision> Effective, string? Next);

/// <summary>
/// <c>/api/customers/{id}/consents</c>: the consent ledger is append-only. A new entry supersedes older
/// ones for the same purpose and channel; nothing is edited or deleted through the API.
/// </summary>
internal sealed class ConsentEndpoints : IApiEndpointModule
{
    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        var group = api.MapGroup("/customers/{id}/consents").WithTags("Consents");
        group.MapGet("", LedgerAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("GetConsents")
            .WithSummary("The consent ledger of a customer in recording order, paged with limit and after, and the effective decision per purpose and channel.")
            .Produces<ConsentLedger>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("", AppendAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("AddConsent")
            .WithSummary("Appends a consent entry (purpose, channel, granted, source; at defaults to now).")
            .Accepts<ConsentEntry>("application/json")
            .Produces<ConsentEntry>(StatusCodes.Status201Created)
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
    }

    private static async Task<IResult> LedgerAsync(HttpContext context, string id)
    {
        if (!Paging.TryRead(context.Request, [], [], out var page, out var problem))
        {
            return problem!;
        }

        var store = context.CrmStore();
        var (customer, missing) = await CustomerLookup.LoadAsync(context, store, id);
        if (customer is null)
        {
            return missing!;
        }

        var access = await context.CrmAccessAsync();
        if (access.Filter(EntityNames.Consent).IsEmpty)
        {
            return ApiAccess.Forbidden(context, EntityNames.Consent, null, access.Check(Privilege.Read, new RecordRef(EntityNames.Consent, "", null)));
        }

        // The page is one query on the customer index (ids grow with recording, so id order is recording order).
        var fetched = await store.Consents.FindAsync(IndexedField.CustomerId, customer.Id, page.Limit + 1, page.After, context.RequestAborted);
        var entries = fetched.Take(page.Limit).ToList();
        string? next = null;
        if (fetched.Count > page.Limit)
        {
            next = Paging.NextLink(context.Request, entries[^1].Id);
            context.Response.Headers.Append("Link", $"<{next}>; rel=\"next\"");
        }

        // The decisions in force need the whole ledger, but only the newest entry per purpose and channel is kept.
        var newest = new Dictionary<(string Purpose, ConsentChannel Channel), ConsentEntry>();
        string? after = null;
        while (true)
        {
            var slice = await store.Consents.FindAsync(IndexedField.CustomerId, customer.Id, 1000, after, context.RequestAborted);
            foreach (var entry in slice)
            {
                var key = (entry.Purpose.Trim().ToLowerInvariant(), entry.Channel);
                if (!newest.TryGetValue(key, out var kept) || Later(entry, kept))
                {
                    newest[key] = entry;
                }
            }

            if (slice.Count < 1000)
            {
                break;
            }

            after = slice[^1].Id;
        }

        var deciding = newest.Values.OrderBy(e => e.At).ThenBy(e => e.Id, StringComparer.Ordinal).ToList();
        return ResourceJson.Instance.Ok(new ConsentLedger(customer.Id, entries, Effective(deciding), next));
    }

    /// <summary>The ledger's order for "newest": by <c>at</c>, then by recording order.</summary>
    private static bool Later(ConsentEntry a, ConsentEntry b) => a.At != b.At ? a.At > b.At : string.CompareOrdinal(a.Id, b.Id) > 0;

    /// <summary>
    /// The decision per purpose (ignoring case) and channel: the newest entry (by <c>at</c>, then by
    /// recording order) for that channel or for <c>Any</c>. An <c>Any</c> entry speaks for every channel
    /// of its purpose: a newer one overrides older channel entries, a newer channel entry overrides it
    /// for that channel. The <c>Any</c> row itself shows the newest <c>Any</c> entry.
    /// </summary>
    internal static IReadOnlyList<ConsentDecision> Effective(IReadOnlyList<ConsentEntry> ordered)
    {
        var result = new List<ConsentDecision>();
        foreach (var purpose in ordered.GroupBy(e => e.Purpose.Trim(), StringComparer.OrdinalIgnoreCase))
        {
            foreach (var channel in purpose.Select(e => e.Channel).Distinct().Order())
            {
                var deciding = purpose.Last(e => e.Channel == channel || (channel != ConsentChannel.Any && e.Channel == ConsentChannel.Any));
                result.Add(new ConsentDecision(purpose.Key, channel, deciding.Granted, deciding.At, deciding.Source, deciding.Id));
            }
        }

        return result;
    }

    private static async Task<IResult> AppendAsync(HttpContext context, string id)
    {
        var node = await ResourceJson.ReadNodeAsync(context, mergePatch: false);
        if (node.Problem is not null)
        {
            return node.Problem;
        }

        // A missing "granted" would read as false, a withdrawal nobody asked for: it must be said.
        if (node.Value is JsonObject body && !body.Any(p => p.Key.Equals("granted", StringComparison.OrdinalIgnoreCase)))
        {
            return ResourceProblems.Invalid("consent entry", "granted", "is required: true to give consent, false to withdraw it");
        }

        var json = ResourceJson.Instance;
        var read = json.Convert<ConsentEntry>(node.Value);
        if (read.Problem is not null)
        {
            return read.Problem;
        }

        var entry = read.Value!;
        if (!string.IsNullOrEmpty(entry.CustomerId) && entry.CustomerId != id)
        {
            return ResourceProblems.Invalid("consent entry", "customerId", $"'{entry.CustomerId}' does not match the customer in the URL ('{id}')");
        }

        var store = context.CrmStore();
        var (customer, missing) = await CustomerLookup.LoadAsync(context, store, id);
        if (customer is null)
        {
            return missing!;
        }

        // Consent entries have no owner (root unit): creating one needs consent:create, and reaching the customer (above).
        if (await RecordAccess.ForbiddenAsync(context, EntityNames.Consent, Privilege.Create, null) is { } forbidden)
        {
            return forbidden;
        }

        entry.Id = "";
        entry.Version = 0;
        entry.CustomerId = customer.Id;
        if (entry.At == default)
        {
            entry.At = (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        }

        ConsentEntry stored;
        try
        {
            stored = await store.Consents.CreateAsync(entry, context.RequestAborted);
        }
        catch (StoreException ex)
        {
            return ResourceProblems.FromStore(context, "consent entry", ex);
        }

        context.Response.Headers.Location = context.Request.PathBase.Add(context.Request.Path).ToUriComponent();
        context.Response.Headers.ETag = ETags.Format(stored.Version);
        return json.Ok(stored, StatusCodes.Status201Created);
    }
}
