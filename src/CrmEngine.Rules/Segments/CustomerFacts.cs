using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Rules.Segments;

/// <summary>
/// What a segment script sees as <c>customer</c>: the card copied into plain values plus the
/// figures the engine derives from the customer's orders and activities. The same builder serves
/// incremental re-evaluation, full rebuilds, dry runs and explanations, so they always agree.
/// </summary>
public static class CustomerFacts
{
    /// <summary>Orders listed in <c>customer.orders</c> (most recent first); the figures use every order.</summary>
    public const int MaxListedOrders = 100;

    /// <summary>Orders that count as purchases: not drafts, not cancelled.</summary>
    public static bool Counts(Order order) => order is not null && order.Status is not (OrderStatus.Draft or OrderStatus.Cancelled);

    private static readonly HashSet<string> OrderFields = new(StringComparer.Ordinal)
    {
        "orderCount", "totalSpent", "averageSpent", "firstOrderDate", "lastOrderDate", "daysSinceLastOrder",
        "spentLast30Days", "spentLast90Days", "spentLast180Days", "spentLast365Days", "ordersLast180Days", "orders",
    };

    private static readonly HashSet<string> ActivityFields = new(StringComparer.Ordinal)
    {
        "activityCount", "lastActivityDate", "daysSinceLastActivity", "openActivities",
    };

    /// <summary>
    /// The fields of <paramref name="parameter"/> a script can read, when that can be told from its text:
    /// every use of the name is <c>name.field</c>. Null when it cannot (the name is passed on, indexed,
    /// or appears in a comment): then every field is copied. Only the fields named are built, and the
    /// orders/activities look-ups are skipped when no field needs them.
    /// </summary>
    public static IReadOnlySet<string>? ReferencedFields(string code, string parameter)
    {
        ArgumentNullException.ThrowIfNull(code);
        var fields = new HashSet<string>(StringComparer.Ordinal);
        var uses = System.Text.RegularExpressions.Regex.Matches(code, $@"(?<![\w$.]){System.Text.RegularExpressions.Regex.Escape(parameter)}(?![\w$])(\s*\.\s*([A-Za-z_$][\w$]*))?");
        foreach (System.Text.RegularExpressions.Match use in uses)
        {
            if (!use.Groups[2].Success)
            {
                return null;
            }

            fields.Add(use.Groups[2].Value);
        }

        return fields;
    }

    public static bool NeedsOrders(IReadOnlySet<string>? fields) => fields is null || fields.Overlaps(OrderFields);

    public static bool NeedsActivities(IReadOnlySet<string>? fields) => fields is null || fields.Overlaps(ActivityFields);

    /// <summary>Loads the customer, its orders and activities from the store; null when the customer does not exist.</summary>
    public static async Task<Dictionary<string, object?>?> LoadAsync(ICrmStore store, string customerId, DateTimeOffset asOf,
        CancellationToken cancellationToken = default, IReadOnlySet<string>? fields = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        var customer = await store.Customers.GetAsync(customerId, cancellationToken);
        if (customer is null)
        {
            return null;
        }

        return await LoadAsync(store, customer, asOf, cancellationToken, fields);
    }

    /// <summary>The facts of a customer already read (the orders/activities are looked up only when <paramref name="fields"/> needs them).</summary>
    public static async Task<Dictionary<string, object?>> LoadAsync(ICrmStore store, Customer customer, DateTimeOffset asOf,
        CancellationToken cancellationToken, IReadOnlySet<string>? fields, bool mayHaveOrders = true, bool mayHaveActivities = true)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(customer);
        var orders = mayHaveOrders && NeedsOrders(fields) ? await AllAsync(store.Orders, customer.Id, cancellationToken) : [];
        var activities = mayHaveActivities && NeedsActivities(fields) ? await AllAsync(store.Activities, customer.Id, cancellationToken) : [];
        var facts = Build(customer, orders, activities, asOf);
        if (fields is not null)
        {
            foreach (var key in facts.Keys.Where(k => !fields.Contains(k)).ToList())
            {
                facts.Remove(key);
            }
        }

        return facts;
    }

    private static async Task<List<T>> AllAsync<T>(IEntitySet<T> set, string customerId, CancellationToken ct) where T : class, IEntity
    {
        var all = new List<T>();
        string? after = null;
        while (true)
        {
            var page = await set.FindAsync(IndexedField.CustomerId, customerId, 500, after, ct);
            all.AddRange(page);
            if (page.Count < 500)
            {
                return all;
            }

            after = page[^1].Id;
        }
    }

    public static Dictionary<string, object?> Build(Customer customer, IReadOnlyList<Order> orders, IReadOnlyList<Activity> activities, DateTimeOffset asOf)
    {
        ArgumentNullException.ThrowIfNull(customer);
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(activities);
        var facts = Card(customer);

        var bought = orders.Where(Counts).OrderByDescending(o => o.OrderedAt).ThenByDescending(o => o.Id, StringComparer.Ordinal).ToList();
        var totals = bought.Select(o => (o, Total: (double)o.Total)).ToList();
        double SpentSince(int days) => Math.Round(totals.Where(t => t.o.OrderedAt > asOf.AddDays(-days)).Sum(t => t.Total), 6);
        var total = Math.Round(totals.Sum(t => t.Total), 6);
        var first = bought.Count > 0 ? bought[^1].OrderedAt : (DateTimeOffset?)null;
        var last = bought.Count > 0 ? bought[0].OrderedAt : (DateTimeOffset?)null;
        facts["orderCount"] = bought.Count;
        facts["totalSpent"] = total;
        facts["averageSpent"] = bought.Count > 0 ? Math.Round(total / bought.Count, 6) : 0d;
        facts["firstOrderDate"] = first;
        facts["lastOrderDate"] = last;
        facts["daysSinceLastOrder"] = last is { } l ? (double)DaysBetween(l, asOf) : null;
        facts["spentLast30Days"] = SpentSince(30);
        facts["spentLast90Days"] = SpentSince(90);
        facts["spentLast180Days"] = SpentSince(180);
        facts["spentLast365Days"] = SpentSince(365);
        facts["ordersLast180Days"] = bought.Count(o => o.OrderedAt > asOf.AddDays(-180));
        facts["orders"] = totals.Take(MaxListedOrders).Select(t => (object?)new Dictionary<string, object?>
        {
            ["id"] = t.o.Id,
            ["number"] = t.o.Number,
            ["date"] = t.o.OrderedAt,
            ["total"] = t.Total,
            ["currency"] = t.o.Currency,
            ["status"] = t.o.Status.ToString(),
        }).ToList();

        var lastActivity = activities.Count == 0 ? (DateTimeOffset?)null
            : activities.Max(a => a.EndAt ?? a.StartAt ?? a.UpdatedAt);
        facts["activityCount"] = activities.Count;
        facts["lastActivityDate"] = lastActivity;
        facts["daysSinceLastActivity"] = lastActivity is { } la ? (double)DaysBetween(la, asOf) : null;
        facts["openActivities"] = activities.Count(a => a.Status == ActivityStatus.Planned);
        // Cases belong to the Service plugin, which does not exist yet: always 0 until it does.
        facts["openCases"] = 0;
        return facts;
    }

    private static long DaysBetween(DateTimeOffset from, DateTimeOffset to) => (long)Math.Floor((to - from).TotalDays);

    /// <summary>The card fields as plain values (also the record a customer business rule sees).</summary>
    public static Dictionary<string, object?> Card(Customer customer)
    {
        ArgumentNullException.ThrowIfNull(customer);
        var mailing = customer.Addresses.FirstOrDefault(a => a.Kind == AddressKind.Mailing) ?? customer.Addresses.FirstOrDefault();
        return new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = customer.Id,
            ["name"] = customer.Name,
            ["kind"] = customer.Kind.ToString(),
            ["status"] = customer.Status.ToString(),
            ["stage"] = customer.Stage.ToString(),
            ["owner"] = customer.Owner,
            ["emails"] = customer.Emails.Cast<object?>().ToList(),
            ["phones"] = customer.Phones.Cast<object?>().ToList(),
            ["tags"] = customer.Tags.Cast<object?>().ToList(),
            ["creditLevel"] = customer.CreditLevel,
            ["creditLimit"] = customer.CreditLimit is { } cl ? (double)cl : null,
            ["blacklisted"] = customer.Blacklisted,
            ["blacklistReason"] = customer.BlacklistReason,
            ["paymentTerms"] = customer.PaymentTerms,
            ["overdueAmount"] = (double)customer.OverdueAmount,
            ["currency"] = customer.Currency,
            ["tradingHabits"] = customer.TradingHabits,
            ["salesStatus"] = customer.SalesStatus,
            ["visitIntervalDays"] = customer.VisitIntervalDays,
            ["nextVisitAt"] = customer.NextVisitAt,
            ["verifiedAt"] = customer.VerifiedAt,
            ["createdAt"] = customer.CreatedAt,
            ["updatedAt"] = customer.UpdatedAt,
            ["region"] = customer.Profile.Region ?? mailing?.Region,
            ["country"] = mailing?.Country,
            ["city"] = mailing?.City,
            ["postalCode"] = mailing?.PostalCode,
            ["profile"] = new Dictionary<string, object?>
            {
                ["region"] = customer.Profile.Region,
                ["gender"] = customer.Profile.Gender,
                ["ageBand"] = customer.Profile.AgeBand,
                ["incomeBand"] = customer.Profile.IncomeBand,
                ["occupation"] = customer.Profile.Occupation,
                ["family"] = customer.Profile.Family,
                ["informationSource"] = customer.Profile.InformationSource,
                ["birthday"] = customer.Profile.Birthday,
                ["interests"] = customer.Profile.Interests.Cast<object?>().ToList(),
            },
            ["addresses"] = customer.Addresses.Select(a => (object?)new Dictionary<string, object?>
            {
                ["kind"] = a.Kind.ToString(),
                ["line1"] = a.Line1,
                ["line2"] = a.Line2,
                ["postalCode"] = a.PostalCode,
                ["city"] = a.City,
                ["region"] = a.Region,
                ["country"] = a.Country,
            }).ToList(),
            ["custom"] = customer.Custom.ToDictionary(p => p.Key, p => CustomToPlain(p.Value), StringComparer.Ordinal),
        };
    }

    public static object? CustomToPlain(CustomValue? value) => value?.Type switch
    {
        CustomValueType.Text => value.Text,
        CustomValueType.Number => value.Number is { } n ? (double)n : null,
        CustomValueType.Date => value.Date,
        CustomValueType.Boolean => value.Boolean,
        _ => null,
    };
}
