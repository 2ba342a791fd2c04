using CrmEngine.Abstractions.Model;
using CrmEngine.Rules;
using CrmEngine.Rules.Admin;
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

        var access = await context.CrmAccessAsync();
        var view = segments.ViewFor(SegmentReaders.For(access));
        // A segment whose script reads what the caller may not see is not there for them (a file refused before it ever
        // loaded has no members and is listed with its error).
        var list = (await segments.ListAsync(context.RequestAborted)).Where(s => view.Sees(s.Name) || s.ScriptHash is null).ToList();
        var visible = access.Filter(EntityNames.Customer);
        // A caller who sees every customer and every membership gets the stored counts; anyone else only the members shown to it.
        var counts = visible.All && list.All(s => !view.ChecksEachCustomer(s.Name)) ? null : await VisibleCountsAsync(context, view, list, visible);
        var items = list.Select(s => new SegmentSummary(s.Name, DescriptionOf(catalog, s.Name), s.Status, counts?[s.Name] ?? s.Members, s.LastRebuildAt,
            s.ScriptHash, s.LastError, s.RefusedError)).ToList();
        return ResourceJson.Instance.Ok(new ResourcePage<SegmentSummary>(items, null));
    }

    /// <summary>
    /// Members per segment that <paramref name="visible"/> keeps. The smaller side is walked: the caller's visible customers
    /// (each looked up in every segment) while they are fewer than the stored members, else every member (its customer read
    /// and judged) — so a salesperson with own depth pays for their own customers, not for the segment.
    /// </summary>
    private static async Task<Dictionary<string, long>> VisibleCountsAsync(HttpContext context, SegmentView view,
        IReadOnlyList<SegmentInfo> list, QueryFilter visible)
    {
        var segments = view.Segments;
        var ct = context.RequestAborted;
        // A caller who sees every customer keeps the stored count of a segment whose memberships need no check of their own.
        var stored = visible.All ? list.Where(s => !view.ChecksEachCustomer(s.Name)).ToHashSet() : [];
        var counts = list.ToDictionary(s => s.Name, s => stored.Contains(s) ? s.Members : 0L, StringComparer.Ordinal);
        var walked = list.Where(s => s.Members > 0 && !stored.Contains(s)).ToList();
        var filled = walked.Select(s => s.Name).Distinct(StringComparer.Ordinal).ToList();
        if (filled.Count == 0 || visible.IsEmpty)
        {
            return counts;
        }

        var store = context.CrmStore();
        var budget = walked.Sum(s => s.Members);
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
                        if (await segments.IsMemberAsync(name, id, ct) && await view.SeesMembershipAsync(name, id, ct))
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
                    if (await store.Customers.GetAsync(member.CustomerId, ct) is { } customer ? visible.Matches(customer.Id, customer.Owner) &&
                            await view.SeesMembershipAsync(name, customer.Id, ct) : visible.All && !view.ChecksEachCustomer(name))
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

        // A segment whose script reads what the caller may not see answers as an unknown one.
        var access = await context.CrmAccessAsync();
        var view = segments.ViewFor(SegmentReaders.For(access));
        if (catalog.Find(RuleKind.Segment, name) is null || !view.Sees(name))
        {
            return ResourceProblems.NotFound("segment", name);
        }

        // Members the caller may read only (and whose membership is shown to it): the member list is read on until the page
        // holds enough of them.
        var visible = access.Filter(EntityNames.Customer);
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
                if (customer is null ? visible.All && !view.ChecksEachCustomer(name)
                        : visible.Matches(customer.Id, customer.Owner) && await view.SeesMembershipAsync(name, customer.Id, context.RequestAborted))
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

        var view = segments.ViewFor(SegmentReaders.For(await context.CrmAccessAsync()));
        var items = (await view.MembershipsAsync(customer, context.RequestAborted)).Select(name => new CustomerSegment(name, DescriptionOf(catalog, name))).ToList();

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

/// <summary>
/// A user's access as the rules engine reads it (<see cref="FactsAccess"/>: Rules does not reference Security). One place for
/// the API's segment lists, <c>crm rules test|segments explain --as</c> and the per-customer export
/// (<c>SegmentService.ViewFor(SegmentReaders.For(access))</c>), so they judge alike.
/// </summary>
public static class SegmentReaders
{
    /// <summary>Null for a caller who may read everything with no field hidden (the unrestricted context); else what it may read.</summary>
    public static FactsAccess? For(AccessContext access)
    {
        ArgumentNullException.ThrowIfNull(access);
        if (access.Unrestricted)
        {
            return null;
        }

        var all = new Dictionary<string, bool>(StringComparer.Ordinal);
        return new FactsAccess(access.UserId, (entity, id, owner) => access.Check(Privilege.Read, new RecordRef(entity, id, owner)).Allowed,
            entity => access.Fields(entity).Hidden,
            entity => all.TryGetValue(entity, out var reads) ? reads : all[entity] = access.Filter(entity).All);
    }
}
