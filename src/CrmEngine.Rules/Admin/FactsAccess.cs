using CrmEngine.Abstractions.Model;

namespace CrmEngine.Rules.Admin;

/// <summary>
/// What the person behind a rule dry run (<c>crm rules test --as</c>) or <c>segments explain --as</c> may see, decided by
/// the access model (the host builds it from the user's access): which records they may read, and which customer fields
/// are hidden from them. A customer they may not read is "not there"; hidden fields are removed from the facts and
/// records before the script sees them (absent, not null), so neither the result nor the trace can show them.
/// </summary>
public sealed class FactsAccess
{
    private readonly Func<string, string, string?, bool> _mayRead;

    /// <param name="user">Who runs it (for messages).</param>
    /// <param name="mayRead">entity, id, owner → may the user read that record?</param>
    /// <param name="hiddenCustomerFields">Customer fields hidden from the user, by their JSON/fact names (<c>creditLevel</c>).</param>
    public FactsAccess(string user, Func<string, string, string?, bool> mayRead, IEnumerable<string> hiddenCustomerFields)
    {
        User = user ?? throw new ArgumentNullException(nameof(user));
        _mayRead = mayRead ?? throw new ArgumentNullException(nameof(mayRead));
        HiddenCustomerFields = new HashSet<string>(hiddenCustomerFields ?? [], StringComparer.OrdinalIgnoreCase);
    }

    public string User { get; }

    public IReadOnlySet<string> HiddenCustomerFields { get; }

    public bool MayRead(string entity, string id, string? owner) => _mayRead(entity, id, owner);

    public bool MayRead(Customer customer) => MayRead(EntityNames.Customer, customer.Id, customer.Owner);

    /// <summary>Removes the hidden customer fields from facts (or a customer record) in place; returns it.</summary>
    public Dictionary<string, object?>? Mask(Dictionary<string, object?>? facts)
    {
        if (facts is not null)
        {
            foreach (var name in facts.Keys.Where(HiddenCustomerFields.Contains).ToList())
            {
                facts.Remove(name);
            }
        }

        return facts;
    }
}
