using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api;
using CrmEngine.Mail.Outbox;
using CrmEngine.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Mail;

/// <summary>
/// What one API caller may see of the outbox (<c>/api/mail/messages</c>), judged per request by the access model as the
/// resources judge it:
/// <list type="bullet">
/// <item>a message about a customer: when the caller may read that customer now (its current owner decides);</item>
/// <item>a message without a customer, or whose customer is no longer on file (deleted, merged away, erased): only for a
/// user who may administer security (<c>security: write at all</c>, the administrator role) — nobody else can be judged
/// to be entitled to it;</item>
/// <item>the model snapshot as the caller sees the records in it: hidden customer and order fields absent, the order
/// left out when the caller may not read it, the extra values (free data of rules and plugins, which may carry anything)
/// only for a caller from whom no customer or order field is hidden;</item>
/// <item>a suppression for a blacklisted customer reads <c>customer is blacklisted</c>, and not even that when the
/// blacklist flag is hidden from the caller.</item>
/// </list>
/// Without an access model in the engine every caller sees everything, as before.
/// </summary>
internal sealed class MailViewer
{
    private readonly AccessContext? _access;
    private readonly ICrmStore? _store;
    private readonly bool _administrator;
    private readonly Dictionary<string, bool> _customers = new(StringComparer.Ordinal);

    private MailViewer(AccessContext? access, ICrmStore? store)
    {
        _access = access;
        _store = store;
        // The outbox administrator is judged by roles, not by the key's scope: reading needs only the read scope.
        _administrator = access is null || AccessContext.ForCaller(access.Snapshot, access.UserId, null).CanAdministerSecurity;
    }

    /// <summary>Why a suppression is shown without its reason: the blacklist flag is hidden from the caller.</summary>
    internal const string HiddenReason = "suppressed for a reason in a customer field hidden from you";

    /// <summary>True when every message is visible as stored (no per-message check needed).</summary>
    public bool SeesAll => _administrator && (_access is null || (_access.Fields(EntityNames.Customer).Hidden.Count == 0
                                                                  && _access.Fields(EntityNames.Order).Hidden.Count == 0));

    public static async Task<MailViewer> ForAsync(HttpContext context)
    {
        if (context.RequestServices.GetService<SecurityDirectory>() is null)
        {
            return new MailViewer(null, null);
        }

        return new MailViewer(await context.CrmAccessAsync(), context.CrmStore());
    }

    /// <summary>May the caller see <paramref name="doc"/> at all? (Not: 404, as for an id nobody has.)</summary>
    public async ValueTask<bool> MaySeeAsync(MailDocument doc, CancellationToken cancellationToken)
    {
        if (_access is null || _administrator)
        {
            return true;
        }

        if (string.IsNullOrEmpty(doc.CustomerId))
        {
            return false;
        }

        if (!_customers.TryGetValue(doc.CustomerId, out var may))
        {
            var customer = await _store!.Customers.GetAsync(doc.CustomerId, cancellationToken).ConfigureAwait(false);
            may = customer is not null && _access.Check(Privilege.Read, new RecordRef(EntityNames.Customer, customer.Id, customer.Owner)).Allowed;
            _customers[doc.CustomerId] = may;
        }

        return may;
    }

    /// <summary>The message as the caller may see it (snapshot masked, the blacklist only to those who may read the flag).</summary>
    public MailMessageInfo Shape(MailMessageInfo info)
    {
        var shown = info with { LastError = ShapeError(info.LastError) };
        return shown.Snapshot is { Length: > 0 } snapshot ? shown with { Snapshot = MaskSnapshot(snapshot) } : shown;
    }

    /// <summary>An error text for the caller: "customer is blacklisted" only to a caller who may read the blacklist flag.</summary>
    public string? ShapeError(string? error) =>
        error is not null && BlacklistHidden && error.Contains(MailOutbox.BlacklistedReason, StringComparison.Ordinal)
            ? error.Replace(MailOutbox.BlacklistedReason, HiddenReason, StringComparison.Ordinal)
            : error;

    private bool BlacklistHidden => _access is not null && _access.Fields(EntityNames.Customer).Hidden.Contains(nameof(Customer.Blacklisted));

    private string MaskSnapshot(string json)
    {
        if (_access is null)
        {
            return json;
        }

        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? [];
        }
        catch (JsonException)
        {
            return "{}"; // unreadable: nothing is shown rather than something unmasked
        }

        var customerMask = _access.Fields(EntityNames.Customer);
        var orderMask = _access.Fields(EntityNames.Order);
        if (root["customer"] is JsonObject customer)
        {
            customerMask.Apply(customer);
        }

        var orderLeftOut = false;
        if (root["order"] is JsonObject order)
        {
            var id = order["id"]?.GetValue<string>() ?? "";
            var owner = order["owner"] is JsonValue o && o.TryGetValue<string>(out var s) ? s : null;
            if (_access.Check(Privilege.Read, new RecordRef(EntityNames.Order, id, owner)).Allowed)
            {
                orderMask.Apply(order);
            }
            else
            {
                root.Remove("order");
                orderLeftOut = true;
            }
        }

        if (customerMask.Hidden.Count > 0 || orderMask.Hidden.Count > 0 || orderLeftOut)
        {
            root.Remove("extra");
        }

        return root.ToJsonString(ModelSnapshot.Json);
    }
}
