using CrmEngine.Abstractions.Model;
using CrmEngine.Rules.Segments;

namespace CrmEngine.Rules.Admin;

/// <summary>
/// What a person may see of customer facts: the reader behind a rule dry run (<c>crm rules test --as</c>),
/// <c>segments explain --as</c>, and the segment lists of the API. Decided by the access model (the host and the API build
/// it from the user's access; Rules does not reference Security): which records they may read, and which fields of
/// customers, orders and activities are hidden from them. A customer they may not read is "not there"; orders and
/// activities they may not read are left out of the lists AND of the figures (counts, sums, dates); hidden fields are
/// absent (not null) from the facts and records, with every figure computed from a hidden field.
/// </summary>
public sealed class FactsAccess
{
    private readonly Func<string, string, string?, bool> _mayRead;
    private readonly Func<string, bool> _readsAll;
    private readonly Dictionary<string, IReadOnlySet<string>> _hidden = new(StringComparer.Ordinal);

    /// <param name="user">Who reads (for messages).</param>
    /// <param name="mayRead">entity, id, owner → may the user read that record?</param>
    /// <param name="hiddenFields">entity → its fields hidden from the user, by their JSON names (<c>overdueAmount</c>).</param>
    /// <param name="readsAll">entity → may the user read every record of it (then no record is checked)? Default: no.</param>
    public FactsAccess(string user, Func<string, string, string?, bool> mayRead, Func<string, IEnumerable<string>> hiddenFields,
        Func<string, bool>? readsAll = null)
    {
        User = user ?? throw new ArgumentNullException(nameof(user));
        _mayRead = mayRead ?? throw new ArgumentNullException(nameof(mayRead));
        ArgumentNullException.ThrowIfNull(hiddenFields);
        _readsAll = readsAll ?? (_ => false);
        foreach (var entity in new[] { EntityNames.Customer, EntityNames.Order, EntityNames.Activity })
        {
            _hidden[entity] = new HashSet<string>(hiddenFields(entity) ?? [], StringComparer.OrdinalIgnoreCase);
        }
    }

    /// <summary>Only customer fields hidden; every order and activity of a readable customer readable (tests, simple callers).</summary>
    public FactsAccess(string user, Func<string, string, string?, bool> mayRead, IEnumerable<string> hiddenCustomerFields)
        : this(user, mayRead, e => e == EntityNames.Customer ? hiddenCustomerFields ?? [] : [], e => e != EntityNames.Customer)
    {
    }

    public string User { get; }

    public IReadOnlySet<string> HiddenCustomerFields => HiddenFields(EntityNames.Customer);

    /// <summary>Fields of customer, order or activity hidden from the user (empty for any other entity).</summary>
    public IReadOnlySet<string> HiddenFields(string entity) => _hidden.TryGetValue(entity, out var set) ? set : EmptySet;

    /// <summary>True when no customer, order or activity field is hidden from the user.</summary>
    public bool HidesNoField => _hidden.Values.All(h => h.Count == 0);

    /// <summary>May the user read every record of <paramref name="entity"/> (so no record needs a check)?</summary>
    public bool ReadsAll(string entity) => _readsAll(entity);

    public bool MayRead(string entity, string id, string? owner) => _readsAll(entity) || _mayRead(entity, id, owner);

    public bool MayRead(Customer customer) => MayRead(EntityNames.Customer, customer.Id, customer.Owner);

    public bool MayRead(Order order) => MayRead(EntityNames.Order, order.Id, order.Owner);

    public bool MayRead(Activity activity) => MayRead(EntityNames.Activity, activity.Id, activity.Owner);

    /// <summary>
    /// Removes from customer facts (or a customer record) in place every fact hidden from the user: hidden fields, facts made
    /// from them (<c>city</c> from <c>addresses</c>), and order/activity figures made from hidden order/activity fields. Returns it.
    /// </summary>
    public Dictionary<string, object?>? Mask(Dictionary<string, object?>? facts)
    {
        if (facts is not null && !HidesNoField)
        {
            foreach (var name in facts.Keys.Where(HidesFact).ToList())
            {
                facts.Remove(name);
            }

            if (facts.GetValueOrDefault("orders") is List<object?> orders)
            {
                foreach (var order in orders.OfType<Dictionary<string, object?>>())
                {
                    foreach (var key in order.Keys.Where(k => CustomerFacts.SourcesOfListedOrderKey(k).Any(HiddenFields(EntityNames.Order).Contains)).ToList())
                    {
                        order.Remove(key);
                    }
                }
            }
        }

        return facts;
    }

    /// <summary>Removes the hidden fields of <paramref name="entity"/> from its plain record (an event rule's order or activity) in place.</summary>
    public Dictionary<string, object?>? MaskRecord(string entity, Dictionary<string, object?>? record)
    {
        if (entity == EntityNames.Customer)
        {
            return Mask(record);
        }

        if (record is not null)
        {
            var hidden = HiddenFields(entity);
            foreach (var name in record.Keys.Where(k => hidden.Contains(k) || (entity == EntityNames.Order && k == "total" && hidden.Contains("lines"))).ToList())
            {
                record.Remove(name);
            }
        }

        return record;
    }

    /// <summary>Is the customer fact (a script's <c>customer.name</c>) hidden from the user, or made from something hidden?</summary>
    public bool HidesFact(string fact) => CustomerFacts.SourcesOf(fact).Any(s => HiddenFields(s.Entity).Contains(s.Field));

    private static readonly IReadOnlySet<string> EmptySet = new HashSet<string>();
}
