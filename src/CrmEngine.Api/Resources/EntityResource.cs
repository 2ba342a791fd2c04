using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.Api.Resources;

/// <summary>
/// Create, read, replace, merge-patch, delete and search of one core entity under <c>/api/{route}</c>.
/// Engine-owned fields (<c>id</c>, <c>version</c>, <c>createdAt</c>, <c>updatedAt</c>) are read-only: values
/// sent in a body are ignored, except an <c>id</c> that differs from the URL's, which is refused (422).
/// Replace and patch need <c>If-Match</c> with the version read (428 without, 412 when it is no longer current).
/// Access (<see cref="RecordAccess"/>): a record the caller may not read is 404 for every method; a write it may read but
/// not do is 403 naming the privilege; lists and searches hold visible records only (filtered before the page is cut);
/// hidden protected fields are absent from every answer, refused in bodies and kept as they are by a replace.
/// </summary>
internal sealed class EntityResource<T> where T : class, IEntity, new()
{
    private readonly string _route;
    private readonly string _entity;
    private readonly string _singular;
    private readonly string _tag;
    private readonly Func<ICrmStore, IEntitySet<T>> _set;
    private readonly bool _isCustomer;

    /// <param name="route">Path segment under <c>/api</c>, for example <c>customers</c>.</param>
    /// <param name="entity">The entity in messages, for example <c>customer</c>.</param>
    /// <param name="singular">Operation name part, for example <c>Customer</c>.</param>
    /// <param name="tag">OpenAPI tag, for example <c>Customers</c>.</param>
    public EntityResource(string route, string entity, string singular, string tag, Func<ICrmStore, IEntitySet<T>> set)
    {
        _route = route;
        _entity = entity;
        _singular = singular;
        _tag = tag;
        _set = set;
        _isCustomer = typeof(T) == typeof(Customer);
    }

    public RouteGroupBuilder Map(IEndpointRouteBuilder api)
    {
        var group = api.MapGroup("/" + _route).WithTags(_tag);
        group.MapPost("", (Func<HttpContext, Task<IResult>>)CreateAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("Create" + _singular)
            .WithSummary($"Creates a {_entity}; answers 201 with Location and ETag.")
            .Accepts<T>("application/json")
            .Produces<T>(StatusCodes.Status201Created)
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapGet("", (Func<HttpContext, Task<IResult>>)SearchAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("Search" + _singular)
            .WithSummary($"Lists {_route} in id order, or finds them by one indexed field; paged with limit and after.")
            .Produces<ResourcePage<T>>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest);
        group.MapGet("/{id}", GetAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("Get" + _singular)
            .WithSummary($"Reads a {_entity}; ETag is its version, If-None-Match answers 304.")
            .Produces<T>()
            .Produces(StatusCodes.Status304NotModified)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPut("/{id}", ReplaceAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("Replace" + _singular)
            .WithSummary($"Replaces a {_entity}; needs If-Match with the version read.")
            .Accepts<T>("application/json")
            .Produces<T>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status428PreconditionRequired);
        group.MapPatch("/{id}", PatchAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("Patch" + _singular)
            .WithSummary($"Changes a {_entity} with a JSON merge patch (RFC 7396); needs If-Match with the version read.")
            .Accepts<T>("application/merge-patch+json", "application/json")
            .Produces<T>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status428PreconditionRequired);
        group.MapDelete("/{id}", DeleteAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("Delete" + _singular)
            .WithSummary($"Deletes a {_entity}; If-Match is optional and honoured.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed);
        return group;
    }

    private async Task<IResult> CreateAsync(HttpContext context)
    {
        var json = ResourceJson.Instance;
        var node = await ResourceJson.ReadNodeAsync(context, mergePatch: false);
        if (node.Problem is not null)
        {
            return node.Problem;
        }

        var access = await context.CrmAccessAsync();
        if (RecordAccess.HiddenInBody(context, access, _entity, node.Value as JsonObject) is { } hidden)
        {
            return hidden;
        }

        var body = json.Convert<T>(node.Value);
        if (body.Problem is not null)
        {
            return body.Problem;
        }

        var entity = body.Value!;
        if (await RecordAccess.ForbiddenAsync(context, _entity, Privilege.Create, null, RecordAccess.OwnerOf(entity)) is { } forbidden)
        {
            return forbidden;
        }

        var store = context.CrmStore();
        if (await RecordAccess.UnseenCustomerAsync(context, store, _entity, entity) is { } unseen)
        {
            return unseen;
        }

        // The engine assigns the id (ids sort by creation, which keeps paging stable) and stamps the rest.
        entity.Id = "";
        entity.Version = 0;
        T stored;
        try
        {
            stored = await _set(store).CreateAsync(entity, context.RequestAborted);
        }
        catch (StoreException ex)
        {
            return ResourceProblems.FromStore(context, _entity, ex);
        }

        context.Response.Headers.ETag = ETags.Format(stored.Version);
        context.Response.Headers.Location = ChildLocation(context.Request, stored.Id);
        return json.Ok(RecordAccess.Shape(access.Fields(_entity), stored), StatusCodes.Status201Created);
    }

    private async Task<IResult> SearchAsync(HttpContext context)
    {
        var set = _set(context.CrmStore());
        // A hidden field named as a filter or sort key is refused before anything else (its values must not leak by selection).
        if (await RecordAccess.HiddenQueryAsync(context, _entity) is { } hiddenQuery)
        {
            return hiddenQuery;
        }

        if (!Paging.TryRead(context.Request, set.IndexedFields, [], out var page, out var problem))
        {
            return problem!;
        }

        var access = await context.CrmAccessAsync();
        var visible = access.Filter(_entity);
        if (visible.Refusal is not null)
        {
            var missing = AccessContext.Missing(_entity, Privilege.Read);
            return ApiAccess.Forbidden(context, _entity, null,
                AccessDecision.Deny(missing, visible.Refusal.StartsWith(missing + ": ", StringComparison.Ordinal) ? visible.Refusal[(missing.Length + 2)..] : visible.Refusal));
        }

        if (page.FilterField is not null && await RecordAccess.HiddenQueryFieldAsync(context, _entity, page.FilterField) is { } hiddenField)
        {
            return hiddenField;
        }

        var mask = access.Fields(_entity);
        var owner = RecordAccess.OwnerFunc<T>();
        if (NameSearch.Applies<T>(page.FilterField))
        {
            var named = NameSearch.Find<T>(context, page.FilterValue!, page.Limit + 1, page.After, visible.All ? null : visible.Matches);
            return named is null
                ? ResourceProblems.BadRequest(Paging.AfterParameter, "is not a cursor of this name search; use the next link of the previous page")
                : Paging.Respond(context, named, page.Limit, n => n.Cursor, n => RecordAccess.Shape(mask, n.Record));
        }

        // Visible records only, selected before the page is cut: the page, its next link and the cursor are of what the
        // caller may see, so paging neither skips nor repeats a visible record and reveals nothing about hidden ones.
        var fetched = page.FilterField is null
            ? await VisibleRecords.PageAsync(set, visible, owner, page.Limit + 1, page.After, context.RequestAborted)
            : await VisibleRecords.FindAsync(set, visible, owner, page.FilterField, page.FilterValue!, page.Limit + 1, page.After, context.RequestAborted);
        return Paging.Respond(context, fetched, page.Limit, e => e.Id, e => RecordAccess.Shape(mask, e));
    }

    private async Task<IResult> GetAsync(HttpContext context, string id)
    {
        var stored = await _set(context.CrmStore()).GetAsync(id, context.RequestAborted);
        if (stored is null)
        {
            return await MissingAsync(context, id, redirect: true);
        }

        if (await RecordAccess.UnreadableAsync(context, _entity, stored) is { } unreadable)
        {
            return unreadable;
        }

        context.Response.Headers.ETag = ETags.Format(stored.Version);
        if (ETags.IfNoneMatchHits(context.Request, stored.Version))
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return ResourceJson.Instance.Ok(RecordAccess.Shape((await context.CrmAccessAsync()).Fields(_entity), stored));
    }

    private async Task<IResult> ReplaceAsync(HttpContext context, string id)
    {
        if (ETags.RequireVersion(context, _entity, out var ifMatch) is { } required)
        {
            return required;
        }

        var node = await ResourceJson.ReadNodeAsync(context, mergePatch: false);
        if (node.Problem is not null)
        {
            return node.Problem;
        }

        var body = ResourceJson.Instance.Convert<T>(node.Value);
        var mask = (await context.CrmAccessAsync()).Fields(_entity);
        // A replacement cannot name what the caller may not see: hidden fields keep their stored values.
        return body.Problem ?? await SaveAsync(context, id, ifMatch, node.Value as JsonObject, current => RecordAccess.KeepHidden(mask, current, body.Value!));
    }

    private async Task<IResult> PatchAsync(HttpContext context, string id)
    {
        if (ETags.RequireVersion(context, _entity, out var ifMatch) is { } required)
        {
            return required;
        }

        var patch = await ResourceJson.ReadMergePatchAsync(context);
        return patch.Problem ?? await SaveAsync(context, id, ifMatch, patch.Value, current => ResourceJson.Instance.ApplyMergePatch(current, patch.Value!));
    }

    /// <summary>
    /// The common end of replace and patch: checks the version, builds the new image from the current
    /// one (<paramref name="build"/> returns the entity or a problem) and updates through the pipeline.
    /// </summary>
    private async Task<IResult> SaveAsync(HttpContext context, string id, IfMatch ifMatch, JsonObject? body, Func<T, object> build)
    {
        var set = _set(context.CrmStore());
        var current = await set.GetAsync(id, context.RequestAborted);
        if (current is null)
        {
            return await MissingAsync(context, id, redirect: true);
        }

        var access = await context.CrmAccessAsync();
        if (await RecordAccess.UnreadableAsync(context, _entity, current) is { } unreadable)
        {
            return unreadable;
        }

        if (await RecordAccess.ForbiddenAsync(context, _entity, Privilege.Write, current) is { } forbidden)
        {
            return forbidden;
        }

        if (RecordAccess.HiddenInBody(context, access, _entity, body) is { } hidden)
        {
            return hidden;
        }

        if (!ifMatch.Allows(current.Version))
        {
            return ResourceProblems.PreconditionFailed(context, _entity, id, current.Version);
        }

        var built = build(current);
        if (built is IResult problem)
        {
            return problem;
        }

        var entity = (T)built;
        if (!string.IsNullOrEmpty(entity.Id) && !string.Equals(entity.Id, id, StringComparison.Ordinal))
        {
            return ResourceProblems.Invalid(_entity, "id", $"'{entity.Id}' does not match the id in the URL ('{id}'); ids cannot be changed");
        }

        entity.Id = id;
        entity.Version = current.Version;
        if (RecordAccess.CustomerOf(entity) != RecordAccess.CustomerOf(current) &&
            await RecordAccess.UnseenCustomerAsync(context, context.CrmStore(), _entity, entity) is { } unseen)
        {
            return unseen;
        }

        T stored;
        try
        {
            stored = await set.UpdateAsync(entity, context.RequestAborted);
        }
        catch (StoreException ex)
        {
            return ResourceProblems.FromStore(context, _entity, ex);
        }

        context.Response.Headers.ETag = ETags.Format(stored.Version);
        return ResourceJson.Instance.Ok(RecordAccess.Shape(access.Fields(_entity), stored));
    }

    private async Task<IResult> DeleteAsync(HttpContext context, string id)
    {
        if (!ETags.TryReadIfMatch(context.Request, out var ifMatch, out var problem))
        {
            return problem!;
        }

        var set = _set(context.CrmStore());
        var current = await set.GetAsync(id, context.RequestAborted);
        if (current is null)
        {
            // No redirect for a delete: following it would delete the customer the old id was merged into.
            return await MissingAsync(context, id, redirect: false);
        }

        if (await RecordAccess.UnreadableAsync(context, _entity, current) is { } unreadable)
        {
            return unreadable;
        }

        if (await RecordAccess.ForbiddenAsync(context, _entity, Privilege.Delete, current) is { } forbidden)
        {
            return forbidden;
        }

        if (ifMatch.Kind == IfMatchKind.Versions && !ifMatch.Allows(current.Version))
        {
            return ResourceProblems.PreconditionFailed(context, _entity, id, current.Version);
        }

        try
        {
            await set.DeleteAsync(id, ifMatch.Kind == IfMatchKind.Versions ? current.Version : null, context.RequestAborted);
        }
        catch (StoreException ex)
        {
            return ResourceProblems.FromStore(context, _entity, ex);
        }

        return Results.NoContent();
    }

    /// <summary>The request path (a collection) extended by one escaped segment.</summary>
    internal static string ChildLocation(HttpRequest request, string id) =>
        request.PathBase.Add(request.Path).ToUriComponent().TrimEnd('/') + "/" + Uri.EscapeDataString(id);

    private Task<IResult> MissingAsync(HttpContext context, string id, bool redirect) =>
        _isCustomer ? CustomerLookup.MissingAsync(context, id, redirect) : Task.FromResult(ResourceProblems.NotFound(_entity, id));
}
