using CrmEngine.Abstractions.Model;
using CrmEngine.Rules;
using CrmEngine.Rules.Segments;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Resources;

/// <summary>A segment as listed over HTTP.</summary>
internal sealed record SegmentSummary(
    string Name,
    string? Description,
    SegmentStatus Status,
    long Members,
    DateTimeOffset? LastRebuiltAt,
    string? ScriptHash,
    string? LastError,
    string? RefusedError);

/// <summary>One member of a segment: the customer and the script version that put it in.</summary>
internal sealed record SegmentMemberItem(string CustomerId, string? Name, DateTimeOffset DecidedAt, string ScriptHash);

/// <summary>A segment a customer belongs to.</summary>
internal sealed record CustomerSegment(string Segment, string? Description);

/// <summary>
/// <c>/api/segments</c> and <c>/api/customers/{id}/segments</c>: segment membership as the rules engine
/// stores it (kept current from the change feed). Read-only; rebuilds stay on the command line.
/// </summary>
internal sealed class SegmentEndpoints : IApiEndpointModule
{
    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        api.MapGet("/segments", (Func<HttpContext, Task<IResult>>)ListAsync)
            .WithTags("Segments")
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("ListSegments")
            .WithSummary("Every segment: name, description, status, member count, last rebuild, script version and errors.")
            .Produces<ResourcePage<SegmentSummary>>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        api.MapGet("/segments/{name}/members", MembersAsync)
            .WithTags("Segments")
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("ListSegmentMembers")
            .WithSummary("The customers in a segment in id order, paged with limit and after.")
            .Produces<ResourcePage<SegmentMemberItem>>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        api.MapGet("/customers/{id}/segments", CustomerSegmentsAsync)
            .WithTags("Segments")
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("ListCustomerSegments")
            .WithSummary("The segments a customer is in.")
            .Produces<ResourcePage<CustomerSegment>>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task<IResult> ListAsync(HttpContext context)
    {
        if (Rules(context) is not ({ } segments, { } catalog))
        {
            return RulesNotRunning();
        }

        var list = await segments.ListAsync(context.RequestAborted);
        var visible = (await context.CrmAccessAsync()).Filter(EntityNames.Customer);
        // A caller who sees every customer gets the stored counts; anyone else only the members it may read.
        var counts = visible.All ? null : await VisibleCountsAsync(context, segments, list, visible);
        var items = list.Select(s => new SegmentSummary(s.Name, DescriptionOf(catalog, s.Name), s.Status, counts?[s.Name] ?? s.Members, s.LastRebuildAt,
            s.ScriptHash, s.LastError, s.RefusedError)).ToList();
        return ResourceJson.Instance.Ok(new ResourcePage<SegmentSummary>(items, null));
    }

    /// <summary>
    /// Members per segment that <paramref name="visible"/> keeps. The smaller side is walked: the caller's visible customers
    /// (each looked up in every segment) while they are fewer than the stored members, else every member (its customer read
    /// and judged) — so a salesperson with own depth pays for their own customers, not for the segment.
    /// </summary>
    private static async Task<Dictionary<string, long>> VisibleCountsAsync(HttpContext context, SegmentService segments,
        IReadOnlyList<SegmentInfo> list, QueryFilter visible)
    {
        var ct = context.RequestAborted;
        var counts = list.ToDictionary(s => s.Name, _ => 0L, StringComparer.Ordinal);
        var filled = list.Where(s => s.Members > 0).Select(s => s.Name).Distinct(StringComparer.Ordinal).ToList();
        if (filled.Count == 0 || visible.IsEmpty)
        {
            return counts;
        }

        var store = context.CrmStore();
        var budget = list.Sum(s => s.Members);
        var ids = new List<string>();
        string? after = null;
        const int slice = 1000;
        while ((long)ids.Count * filled.Count <= budget)
        {
            var page = await VisibleRecords.PageAsync(store.Customers, visible, RecordAccess.OwnerFunc<Customer>(), slice, after, ct);
            ids.AddRange(page.Select(c => c.Id));
            if (page.Count < slice)
            {
                if ((long)ids.Count * filled.Count > budget)
                {
                    break;
                }

                foreach (var name in filled)
                {
                    foreach (var id in ids)
                    {
                        if (await segments.IsMemberAsync(name, id, ct))
                        {
                            counts[name]++;
                        }
                    }
                }

                return counts;
            }

            after = page[^1].Id;
        }

        // Many visible customers: walk the members instead (a member whose customer is gone counts only for those who see all).
        foreach (var name in filled)
        {
            string? cursor = null;
            while (true)
            {
                var members = await segments.MembersAsync(name, slice, cursor, ct);
                foreach (var member in members)
                {
                    if (await store.Customers.GetAsync(member.CustomerId, ct) is { } customer && visible.Matches(customer.Id, customer.Owner))
                    {
                        counts[name]++;
                    }
                }

                if (members.Count < slice)
                {
                    break;
                }

                cursor = members[^1].CustomerId;
            }
        }

        return counts;
    }

    private static async Task<IResult> MembersAsync(HttpContext context, string name)
    {
        if (!Paging.TryRead(context.Request, [], [], out var page, out var problem))
        {
            return problem!;
        }

        if (Rules(context) is not ({ } segments, { } catalog))
        {
            return RulesNotRunning();
        }

        if (catalog.Find(RuleKind.Segment, name) is null)
        {
            return ResourceProblems.NotFound("segment", name);
        }

        // Members the caller may read only: the member list is read on until the page holds enough of them.
        var visible = (await context.CrmAccessAsync()).Filter(EntityNames.Customer);
        var store = context.CrmStore();
        var items = new List<(SegmentMember Member, string? Name)>(page.Limit + 1);
        var after = page.After;
        while (items.Count <= page.Limit)
        {
            var slice = Math.Max(page.Limit + 1, 100);
            var members = await segments.MembersAsync(name, slice, after, context.RequestAborted);
            foreach (var member in members)
            {
                var customer = await store.Customers.GetAsync(member.CustomerId, context.RequestAborted);
                if (customer is null ? visible.All : visible.Matches(customer.Id, customer.Owner))
                {
                    // The extra member past the page only tells that a next page exists.
                    items.Add((member, customer?.Name));
                    if (items.Count > page.Limit)
                    {
                        break;
                    }
                }
            }

            if (members.Count < slice)
            {
                break;
            }

            after = members[^1].CustomerId;
        }

        return Paging.Respond(context, items, page.Limit, m => m.Member.CustomerId,
            m => new SegmentMemberItem(m.Member.CustomerId, m.Name, m.Member.DecidedAt, m.Member.ScriptHash));
    }

    private static async Task<IResult> CustomerSegmentsAsync(HttpContext context, string id)
    {
        if (Rules(context) is not ({ } segments, { } catalog))
        {
            return RulesNotRunning();
        }

        var (customer, missing) = await CustomerLookup.LoadAsync(context, context.CrmStore(), id);
        if (customer is null)
        {
            return missing!;
        }

        var items = new List<CustomerSegment>();
        foreach (var rule in catalog.Segments)
        {
            if (await segments.IsMemberAsync(rule.Name, customer.Id, context.RequestAborted))
            {
                items.Add(new CustomerSegment(rule.Name, DescriptionOf(catalog, rule.Name)));
            }
        }

        return ResourceJson.Instance.Ok(new ResourcePage<CustomerSegment>(items, null));
    }

    private static (SegmentService Segments, RuleCatalog Catalog)? Rules(HttpContext context) =>
        context.RequestServices.GetService<SegmentService>() is { } segments && context.RequestServices.GetService<RuleCatalog>() is { } catalog
            ? (segments, catalog)
            : null;

    private static string? DescriptionOf(RuleCatalog catalog, string segment) =>
        catalog.Find(RuleKind.Segment, segment)?.Script.Header.GetValueOrDefault("description");

    private static IResult RulesNotRunning() =>
        ResourceProblems.Problem(StatusCodes.Status503ServiceUnavailable, "Segments are not available",
            "The rules engine is not running in this host, so there are no segments to list.");
}
