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

    /// <summary>
    /// The stored fields (entity, JSON field name) a customer fact is made from: a card field is its own field (any name the
    /// engine does not derive counts as one, so a mention is never overlooked), <c>city</c> comes from <c>addresses</c>,
    /// <c>totalSpent</c> from the orders' status and total, and so on. A fact is hidden from a reader when any of them is.
    /// </summary>
    public static IEnumerable<(string Entity, string Field)> SourcesOf(string fact) => Sources.TryGetValue(fact, out var known)
        ? known
        : [(EntityNames.Customer, fact)];

    /// <summary>The order fields one entry of <c>customer.orders</c> shows under <paramref name="key"/>.</summary>
    public static IEnumerable<string> SourcesOfListedOrderKey(string key) => key switch
    {
        "date" => ["orderedAt"],
        "total" => ["total", "lines"],
        "id" => [],
        _ => [key],
    };

    private static (string, string)[] Of(string entity, params string[] fields) => fields.Select(f => (entity, f)).ToArray();

    private static readonly Dictionary<string, (string Entity, string Field)[]> Sources = new(StringComparer.Ordinal)
    {
        ["region"] = Of(EntityNames.Customer, "profile", "addresses"),
        ["country"] = Of(EntityNames.Customer, "addresses"),
        ["city"] = Of(EntityNames.Customer, "addresses"),
        ["postalCode"] = Of(EntityNames.Customer, "addresses"),
        // Which orders count is decided by their status, so every order figure is made from it.
        ["orderCount"] = Of(EntityNames.Order, "status"),
        ["totalSpent"] = Of(EntityNames.Order, "status", "total", "lines"),
        ["averageSpent"] = Of(EntityNames.Order, "status", "total", "lines"),
        ["firstOrderDate"] = Of(EntityNames.Order, "status", "orderedAt"),
        ["lastOrderDate"] = Of(EntityNames.Order, "status", "orderedAt"),
        ["daysSinceLastOrder"] = Of(EntityNames.Order, "status", "orderedAt"),
        ["spentLast30Days"] = Of(EntityNames.Order, "status", "total", "lines", "orderedAt"),
        ["spentLast90Days"] = Of(EntityNames.Order, "status", "total", "lines", "orderedAt"),
        ["spentLast180Days"] = Of(EntityNames.Order, "status", "total", "lines", "orderedAt"),
        ["spentLast365Days"] = Of(EntityNames.Order, "status", "total", "lines", "orderedAt"),
        ["ordersLast180Days"] = Of(EntityNames.Order, "status", "orderedAt"),
        ["orders"] = Of(EntityNames.Order, "status"),
        ["activityCount"] = [],
        ["openActivities"] = Of(EntityNames.Activity, "status"),
        ["lastActivityDate"] = Of(EntityNames.Activity, "endAt", "startAt", "updatedAt"),
        ["daysSinceLastActivity"] = Of(EntityNames.Activity, "endAt", "startAt", "updatedAt"),
        ["openCases"] = [],
    };

    /// <summary>
    /// Would the answer of a script that reads <paramref name="fields"/> (null: cannot be told) tell <paramref name="reader"/>
    /// something hidden from them? Yes when it reads a fact hidden from them (<see cref="Admin.FactsAccess.HidesFact"/>), or,
    /// when its reads cannot be told, as soon as any field is hidden from them. Orders and activities the reader may not
    /// read are a question of each customer (<see cref="LeavesOutAsync"/>).
    /// </summary>
    public static bool RevealsHidden(IReadOnlySet<string>? fields, Admin.FactsAccess reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return fields is null ? !reader.HidesNoField : fields.Any(reader.HidesFact);
    }

    /// <summary>
    /// Does the customer have an order (one that counts as a purchase) or an activity the reader may not read, of the kind
    /// a script reading <paramref name="fields"/> needs? Then its figures would count what the reader may not see.
    /// </summary>
    public static async Task<bool> LeavesOutAsync(ICrmStore store, string customerId, IReadOnlySet<string>? fields, Admin.FactsAccess reader,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(reader);
        if (NeedsOrders(fields) && !reader.ReadsAll(EntityNames.Order)
            && (await AllAsync(store.Orders, customerId, cancellationToken)).Any(o => Counts(o) && !reader.MayRead(o)))
        {
            return true;
        }

        return NeedsActivities(fields) && !reader.ReadsAll(EntityNames.Activity)
            && (await AllAsync(store.Activities, customerId, cancellationToken)).Any(a => !reader.MayRead(a));
    }

    /// <summary>
    /// The facts of a customer as <paramref name="reader"/> sees them (null: everything): orders and activities they may
    /// not read are left out of the lists and of every figure, and facts hidden from them are absent.
    /// </summary>
    public static async Task<Dictionary<string, object?>> LoadAsAsync(ICrmStore store, Customer customer, DateTimeOffset asOf, Admin.FactsAccess? reader,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(customer);
        var orders = new OrderFigures(asOf, keepOrders: true);
        foreach (var o in await AllAsync(store.Orders, customer.Id, cancellationToken))
        {
            if (reader is null || reader.MayRead(o))
            {
                orders.Add(o);
            }
        }

        var activities = new ActivityFigures();
        foreach (var a in await AllAsync(store.Activities, customer.Id, cancellationToken))
        {
            if (reader is null || reader.MayRead(a))
            {
                activities.Add(a);
            }
        }

        var facts = Build(customer, orders, activities, asOf, null);
        return reader?.Mask(facts) ?? facts;
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
        var orders = new OrderFigures(asOf, ListsOrders(fields));
        if (mayHaveOrders && NeedsOrders(fields))
        {
            foreach (var o in await AllAsync(store.Orders, customer.Id, cancellationToken))
            {
                orders.Add(o);
            }
        }

        var activities = new ActivityFigures();
        if (mayHaveActivities && NeedsActivities(fields))
        {
            foreach (var a in await AllAsync(store.Activities, customer.Id, cancellationToken))
            {
                activities.Add(a);
            }
        }

        return Build(customer, orders, activities, asOf, fields);
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

    /// <summary>True when the script reads <c>customer.orders</c> (then each order is kept, not only the sums).</summary>
    public static bool ListsOrders(IReadOnlySet<string>? fields) => fields is null || fields.Contains("orders");

    public static Dictionary<string, object?> Build(Customer customer, IReadOnlyList<Order> orders, IReadOnlyList<Activity> activities, DateTimeOffset asOf)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(activities);
        var o = new OrderFigures(asOf, keepOrders: true);
        foreach (var order in orders)
        {
            o.Add(order);
        }

        var a = new ActivityFigures();
        foreach (var activity in activities)
        {
            a.Add(activity);
        }

        return Build(customer, o, a, asOf, null);
    }

    /// <summary>
    /// The customer object from the card and the figures summed over its orders and activities; only the
    /// <paramref name="fields"/> named (all when null) are built. Full rebuilds sum the figures from one scan of
    /// each collection, incremental updates from the customer's own records: the sums are exact (decimal), so
    /// both give the same values whatever the order the records come in.
    /// </summary>
    public static Dictionary<string, object?> Build(Customer customer, OrderFigures? orders, ActivityFigures? activities, DateTimeOffset asOf,
        IReadOnlySet<string>? fields)
    {
        ArgumentNullException.ThrowIfNull(customer);
        orders ??= new OrderFigures(asOf, false);
        activities ??= new ActivityFigures();
        var facts = new Dictionary<string, object?>(fields?.Count ?? CardFields.Length + DerivedFields.Length, StringComparer.Ordinal);
        foreach (var (name, get) in CardFields)
        {
            if (fields is null || fields.Contains(name))
            {
                facts[name] = get(customer);
            }
        }

        foreach (var (name, get) in DerivedFields)
        {
            if (fields is null || fields.Contains(name))
            {
                facts[name] = get(orders, activities, asOf);
            }
        }

        return facts;
    }

    private static double Money(decimal amount) => (double)Math.Round(amount, 6);

    private static long DaysBetween(DateTimeOffset from, DateTimeOffset to) => (long)Math.Floor((to - from).TotalDays);

    private static readonly (string Name, Func<OrderFigures, ActivityFigures, DateTimeOffset, object?> Get)[] DerivedFields =
    [
        ("orderCount", (o, _, _) => o.Count),
        ("totalSpent", (o, _, _) => Money(o.Total)),
        ("averageSpent", (o, _, _) => o.Count > 0 ? Money(o.Total / o.Count) : 0d),
        ("firstOrderDate", (o, _, _) => o.First),
        ("lastOrderDate", (o, _, _) => o.Last),
        ("daysSinceLastOrder", (o, _, asOf) => o.Last is { } l ? (double)DaysBetween(l, asOf) : null),
        ("spentLast30Days", (o, _, _) => Money(o.Spent30)),
        ("spentLast90Days", (o, _, _) => Money(o.Spent90)),
        ("spentLast180Days", (o, _, _) => Money(o.Spent180)),
        ("spentLast365Days", (o, _, _) => Money(o.Spent365)),
        ("ordersLast180Days", (o, _, _) => o.Count180),
        ("orders", (o, _, _) => o.Listed()),
        ("activityCount", (_, a, _) => a.Count),
        ("lastActivityDate", (_, a, _) => a.Last),
        ("daysSinceLastActivity", (_, a, asOf) => a.Last is { } la ? (double)DaysBetween(la, asOf) : null),
        ("openActivities", (_, a, _) => a.Open),
        // Cases belong to the Service plugin, which does not exist yet: always 0 until it does.
        ("openCases", (_, _, _) => 0),
    ];

    /// <summary>The card fields as plain values (also the record a customer business rule sees).</summary>
    public static Dictionary<string, object?> Card(Customer customer)
    {
        ArgumentNullException.ThrowIfNull(customer);
        var card = new Dictionary<string, object?>(CardFields.Length, StringComparer.Ordinal);
        foreach (var (name, get) in CardFields)
        {
            card[name] = get(customer);
        }

        return card;
    }

    private static Address? Mailing(Customer c) => c.Addresses.FirstOrDefault(a => a.Kind == AddressKind.Mailing) ?? c.Addresses.FirstOrDefault();

    /// <summary>Each card field with how it is read; a rebuild builds only the ones the script names.</summary>
    private static readonly (string Name, Func<Customer, object?> Get)[] CardFields =
    [
        ("id", c => c.Id),
        ("name", c => c.Name),
        ("kind", c => c.Kind.ToString()),
        ("status", c => c.Status.ToString()),
        ("stage", c => c.Stage.ToString()),
        ("owner", c => c.Owner),
        ("emails", c => c.Emails.Cast<object?>().ToList()),
        ("phones", c => c.Phones.Cast<object?>().ToList()),
        ("tags", c => c.Tags.Cast<object?>().ToList()),
        ("creditLevel", c => c.CreditLevel),
        ("creditLimit", c => c.CreditLimit is { } cl ? (double)cl : null),
        ("blacklisted", c => c.Blacklisted),
        ("blacklistReason", c => c.BlacklistReason),
        ("paymentTerms", c => c.PaymentTerms),
        ("overdueAmount", c => (double)c.OverdueAmount),
        ("currency", c => c.Currency),
        ("tradingHabits", c => c.TradingHabits),
        ("salesStatus", c => c.SalesStatus),
        ("visitIntervalDays", c => c.VisitIntervalDays),
        ("nextVisitAt", c => c.NextVisitAt),
        ("verifiedAt", c => c.VerifiedAt),
        ("createdAt", c => c.CreatedAt),
        ("updatedAt", c => c.UpdatedAt),
        ("region", c => c.Profile.Region ?? Mailing(c)?.Region),
        ("country", c => Mailing(c)?.Country),
        ("city", c => Mailing(c)?.City),
        ("postalCode", c => Mailing(c)?.PostalCode),
        ("profile", c => new Dictionary<string, object?>
        {
            ["region"] = c.Profile.Region,
            ["gender"] = c.Profile.Gender,
            ["ageBand"] = c.Profile.AgeBand,
            ["incomeBand"] = c.Profile.IncomeBand,
            ["occupation"] = c.Profile.Occupation,
            ["family"] = c.Profile.Family,
            ["informationSource"] = c.Profile.InformationSource,
            ["birthday"] = c.Profile.Birthday,
            ["interests"] = c.Profile.Interests.Cast<object?>().ToList(),
        }),
        ("addresses", c => c.Addresses.Select(a => (object?)new Dictionary<string, object?>
        {
            ["kind"] = a.Kind.ToString(),
            ["line1"] = a.Line1,
            ["line2"] = a.Line2,
            ["postalCode"] = a.PostalCode,
            ["city"] = a.City,
            ["region"] = a.Region,
            ["country"] = a.Country,
        }).ToList()),
        ("custom", c => c.Custom.ToDictionary(p => p.Key, p => CustomToPlain(p.Value), StringComparer.Ordinal)),
    ];

    public static object? CustomToPlain(CustomValue? value) => value?.Type switch
    {
        CustomValueType.Text => value.Text,
        CustomValueType.Number => value.Number is { } n ? (double)n : null,
        CustomValueType.Date => value.Date,
        CustomValueType.Boolean => value.Boolean,
        _ => null,
    };
}

/// <summary>
/// The order figures of one customer as of one moment, summed one order at a time (so a full rebuild can
/// sum them from one scan of the orders). Amounts are summed as decimals: exact, so the order the records
/// come in does not change a value.
/// </summary>
public sealed class OrderFigures(DateTimeOffset asOf, bool keepOrders)
{
    private List<(string Id, string? Number, DateTimeOffset Date, decimal Total, string Currency, OrderStatus Status)>? _orders;

    public int Count { get; private set; }
    public decimal Total { get; private set; }
    public decimal Spent30 { get; private set; }
    public decimal Spent90 { get; private set; }
    public decimal Spent180 { get; private set; }
    public decimal Spent365 { get; private set; }
    public int Count180 { get; private set; }
    public DateTimeOffset? First { get; private set; }
    public DateTimeOffset? Last { get; private set; }

    public void Add(Order order)
    {
        ArgumentNullException.ThrowIfNull(order);
        if (!CustomerFacts.Counts(order))
        {
            return;
        }

        var total = order.Total;
        var at = order.OrderedAt;
        Count++;
        Total += total;
        Spent30 += at > asOf.AddDays(-30) ? total : 0;
        Spent90 += at > asOf.AddDays(-90) ? total : 0;
        Spent180 += at > asOf.AddDays(-180) ? total : 0;
        Spent365 += at > asOf.AddDays(-365) ? total : 0;
        Count180 += at > asOf.AddDays(-180) ? 1 : 0;
        First = First is { } f && f <= at ? f : at;
        Last = Last is { } l && l >= at ? l : at;
        if (keepOrders)
        {
            (_orders ??= []).Add((order.Id, order.Number, at, total, order.Currency, order.Status));
        }
    }

    /// <summary><c>customer.orders</c>: the most recent <see cref="CustomerFacts.MaxListedOrders"/> (ties by id, newest first).</summary>
    internal List<object?> Listed() => _orders is null ? [] : _orders
        .OrderByDescending(o => o.Date).ThenByDescending(o => o.Id, StringComparer.Ordinal)
        .Take(CustomerFacts.MaxListedOrders)
        .Select(o => (object?)new Dictionary<string, object?>
        {
            ["id"] = o.Id,
            ["number"] = o.Number,
            ["date"] = o.Date,
            ["total"] = (double)o.Total,
            ["currency"] = o.Currency,
            ["status"] = o.Status.ToString(),
        }).ToList();
}

/// <summary>The activity figures of one customer, summed one activity at a time.</summary>
public sealed class ActivityFigures
{
    public int Count { get; private set; }
    public int Open { get; private set; }
    public DateTimeOffset? Last { get; private set; }

    public void Add(Activity activity)
    {
        ArgumentNullException.ThrowIfNull(activity);
        Count++;
        Open += activity.Status == ActivityStatus.Planned ? 1 : 0;
        var at = activity.EndAt ?? activity.StartAt ?? activity.UpdatedAt;
        Last = Last is { } l && l >= at ? l : at;
    }
}
