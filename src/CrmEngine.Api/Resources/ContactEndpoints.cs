using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.Api.Resources;

/// <summary>
/// <c>/api/customers/{id}/contacts</c>: the contact persons inside a customer card. Every change is an
/// update of the customer through the pipeline, so each needs <c>If-Match</c> with the customer's
/// version, and every answer carries the customer's (new) version as its ETag.
/// </summary>
internal sealed class ContactEndpoints : IApiEndpointModule
{
    private const int MaxIdLength = 64;

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        var group = api.MapGroup("/customers/{id}/contacts").WithTags("Contact persons");
        group.MapGet("", ListAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("ListContacts")
            .WithSummary("The contact persons of a customer; ETag is the customer's version.")
            .Produces<ResourcePage<ContactPerson>>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("", AddAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("AddContact")
            .WithSummary("Adds a contact person; needs If-Match with the customer's version.")
            .Accepts<ContactPerson>("application/json")
            .Produces<ContactPerson>(StatusCodes.Status201Created)
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status428PreconditionRequired);
        group.MapGet("/{contactId}", GetAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("GetContact")
            .WithSummary("One contact person; ETag is the customer's version.")
            .Produces<ContactPerson>()
            .Produces(StatusCodes.Status304NotModified)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPut("/{contactId}", ReplaceAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("ReplaceContact")
            .WithSummary("Replaces a contact person; needs If-Match with the customer's version.")
            .Accepts<ContactPerson>("application/json")
            .Produces<ContactPerson>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status428PreconditionRequired);
        group.MapPatch("/{contactId}", PatchAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("PatchContact")
            .WithSummary("Changes a contact person with a JSON merge patch; needs If-Match with the customer's version.")
            .Accepts<ContactPerson>("application/merge-patch+json", "application/json")
            .Produces<ContactPerson>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status428PreconditionRequired);
        group.MapDelete("/{contactId}", DeleteAsync)
            .RequireAuthorization(ApiPolicies.Write)
            .WithName("DeleteContact")
            .WithSummary("Removes a contact person; needs If-Match with the customer's version.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesProblem(StatusCodes.Status428PreconditionRequired);
    }

    private static async Task<IResult> ListAsync(HttpContext context, string id)
    {
        var (customer, missing) = await CustomerLookup.LoadAsync(context, context.CrmStore(), id);
        if (customer is null)
        {
            return missing!;
        }

        context.Response.Headers.ETag = ETags.Format(customer.Version);
        return ResourceJson.Instance.Ok(new ResourcePage<ContactPerson>(customer.Contacts, null));
    }

    private static async Task<IResult> GetAsync(HttpContext context, string id, string contactId)
    {
        var (customer, missing) = await CustomerLookup.LoadAsync(context, context.CrmStore(), id);
        if (customer is null)
        {
            return missing!;
        }

        var contact = customer.Contacts.FirstOrDefault(c => c?.Id == contactId);
        if (contact is null)
        {
            return ContactNotFound(id, contactId);
        }

        context.Response.Headers.ETag = ETags.Format(customer.Version);
        return ETags.IfNoneMatchHits(context.Request, customer.Version)
            ? Results.StatusCode(StatusCodes.Status304NotModified)
            : ResourceJson.Instance.Ok(contact);
    }

    private static async Task<IResult> AddAsync(HttpContext context, string id)
    {
        var target = await WritableAsync(context, id, redirect: true);
        if (target.Problem is not null)
        {
            return target.Problem;
        }

        var body = await ResourceJson.Instance.ReadBodyAsync<ContactPerson>(context);
        if (body.Problem is not null)
        {
            return body.Problem;
        }

        var contact = body.Value!;
        if (string.IsNullOrEmpty(contact.Id))
        {
            contact.Id = Guid.CreateVersion7().ToString("N");
        }
        else if (!IsValidId(contact.Id))
        {
            return ResourceProblems.Invalid("contact person", "id", $"'{contact.Id}' is not a usable id: use 1-{MaxIdLength} letters, digits, '-', '_' or '.' (or leave it out)");
        }

        return await ChangeAsync(context, target, StatusCodes.Status201Created, customer =>
        {
            if (customer.Contacts.Any(c => c?.Id == contact.Id))
            {
                return (ResourceProblems.Conflict($"Customer '{customer.Id}' already has a contact person '{contact.Id}'.", "id"), -1);
            }

            customer.Contacts.Add(contact);
            return (null, customer.Contacts.Count - 1);
        });
    }

    private static async Task<IResult> ReplaceAsync(HttpContext context, string id, string contactId)
    {
        var target = await WritableAsync(context, id, redirect: true);
        if (target.Problem is not null)
        {
            return target.Problem;
        }

        var body = await ResourceJson.Instance.ReadBodyAsync<ContactPerson>(context);
        if (body.Problem is not null)
        {
            return body.Problem;
        }

        return await ChangeAsync(context, target, StatusCodes.Status200OK, customer =>
            Put(customer, contactId, _ => body.Value!));
    }

    private static async Task<IResult> PatchAsync(HttpContext context, string id, string contactId)
    {
        var target = await WritableAsync(context, id, redirect: true);
        if (target.Problem is not null)
        {
            return target.Problem;
        }

        var patch = await ResourceJson.ReadMergePatchAsync(context);
        return patch.Problem ?? await ChangeAsync(context, target, StatusCodes.Status200OK, customer =>
            Put(customer, contactId, current => ResourceJson.Instance.ApplyMergePatch(current, patch.Value!)));
    }

    private static async Task<IResult> DeleteAsync(HttpContext context, string id, string contactId)
    {
        var target = await WritableAsync(context, id, redirect: false);
        if (target.Problem is not null)
        {
            return target.Problem;
        }

        return await ChangeAsync(context, target, StatusCodes.Status204NoContent, customer =>
        {
            var index = customer.Contacts.FindIndex(c => c?.Id == contactId);
            if (index < 0)
            {
                return (ContactNotFound(customer.Id, contactId), -1);
            }

            customer.Contacts.RemoveAt(index);
            return (null, -1);
        });
    }

    /// <summary>Replaces the contact <paramref name="contactId"/> with what <paramref name="build"/> makes of it (a contact or a problem).</summary>
    private static (IResult? Problem, int Index) Put(Customer customer, string contactId, Func<ContactPerson, object> build)
    {
        var index = customer.Contacts.FindIndex(c => c?.Id == contactId);
        if (index < 0)
        {
            return (ContactNotFound(customer.Id, contactId), -1);
        }

        var built = build(customer.Contacts[index]);
        if (built is IResult problem)
        {
            return (problem, -1);
        }

        var contact = (ContactPerson)built;
        if (!string.IsNullOrEmpty(contact.Id) && contact.Id != contactId)
        {
            return (ResourceProblems.Invalid("contact person", "id", $"'{contact.Id}' does not match the id in the URL ('{contactId}'); ids cannot be changed"), -1);
        }

        contact.Id = contactId;
        customer.Contacts[index] = contact;
        return (null, index);
    }

    /// <summary>The customer a contact change is made on, or the answer that stops it.</summary>
    private readonly record struct Target(ICrmStore Store, Customer? Customer, IResult? Problem);

    /// <summary>
    /// The customer a contact change is made on, checked in the order a caller may learn things: a customer it may not
    /// read (or that does not exist) is 404 (308 after a merge), one it may read but not write is 403 naming
    /// <c>customer:write</c>; only then a missing or stale If-Match (428, 412), the body, and the contact (404). So a caller
    /// without write learns nothing about versions or contacts, and is told the privilege it lacks.
    /// </summary>
    private static async Task<Target> WritableAsync(HttpContext context, string id, bool redirect)
    {
        var store = context.CrmStore();
        var (customer, missing) = await CustomerLookup.LoadAsync(context, store, id, redirect);
        if (customer is null)
        {
            return new Target(store, null, missing);
        }

        if (await RecordAccess.ForbiddenAsync(context, EntityNames.Customer, Privilege.Write, customer) is { } forbidden)
        {
            return new Target(store, null, forbidden);
        }

        if (ETags.RequireVersion(context, "customer", out var ifMatch) is { } required)
        {
            return new Target(store, null, required);
        }

        return ifMatch.Allows(customer.Version)
            ? new Target(store, customer, null)
            : new Target(store, null, ResourceProblems.PreconditionFailed(context, "customer", customer.Id, customer.Version));
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the checked customer (it returns a problem, or the index of the contact to
    /// answer with; -1 for none) and stores the customer as one update.
    /// </summary>
    private static async Task<IResult> ChangeAsync(HttpContext context, Target target, int status, Func<Customer, (IResult? Problem, int Index)> change)
    {
        var (store, customer) = (target.Store, target.Customer!);
        var (problem, index) = change(customer);
        if (problem is not null)
        {
            return problem;
        }

        // One primary contact: marking one clears the mark on the others.
        if (index >= 0 && customer.Contacts[index].Primary)
        {
            for (var i = 0; i < customer.Contacts.Count; i++)
            {
                if (i != index && customer.Contacts[i] is { } other)
                {
                    other.Primary = false;
                }
            }
        }

        var answerId = index >= 0 ? customer.Contacts[index].Id : null;
        Customer stored;
        try
        {
            stored = await store.Customers.UpdateAsync(customer, context.RequestAborted);
        }
        catch (StoreException ex)
        {
            // The store names contact fields "Contacts[i].Email"; for the contact being written, name them as its own fields.
            var prefix = $"contacts[{index}].";
            return ResourceProblems.FromStore(context, "customer", ex,
                field => index >= 0 && field.StartsWith(prefix, StringComparison.Ordinal) ? field[prefix.Length..] : field);
        }

        context.Response.Headers.ETag = ETags.Format(stored.Version);
        // Found again by id: a rule may have reordered the contacts while storing.
        var saved = stored.Contacts.FirstOrDefault(c => c?.Id == answerId);
        if (saved is null)
        {
            return Results.NoContent();
        }

        if (status == StatusCodes.Status201Created)
        {
            context.Response.Headers.Location = EntityResource<Customer>.ChildLocation(context.Request, saved.Id);
        }

        return ResourceJson.Instance.Ok(saved, status);
    }

    private static IResult ContactNotFound(string customerId, string contactId) =>
        ResourceProblems.NotFound("contact person", contactId, new Dictionary<string, object?> { ["customerId"] = customerId });

    private static bool IsValidId(string id) =>
        id.Length <= MaxIdLength && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
