using CrmEngine.Abstractions.Model;
using CrmEngine.Rules.Admin;

namespace CrmEngine.Rules.Segments;

/// <summary>
/// Which segments and memberships one reader may see. A membership is the script's answer over the whole customer, so it
/// tells the reader what the script read:
/// <list type="bullet">
/// <item>a segment whose current script reads a fact hidden from the reader (a protected field such as
/// <c>overdueAmount</c>, or a figure made from a hidden order/activity field) does not exist for them; when the script's
/// reads cannot be told (<c>customer</c> passed on or indexed) it exists only for a reader from whom no field is hidden;</item>
/// <item>a customer's membership of a segment whose script reads order (activity) figures is shown only when the reader may
/// read every order that counts (every activity) of that customer.</item>
/// </list>
/// The names a script mentions count as read (<see cref="CustomerFacts.ReferencedFields"/>), so the judgement never
/// under-counts. Null reader: the machine operator, who sees everything.
/// </summary>
public sealed class SegmentView
{
    private readonly SegmentService _segments;
    private readonly Dictionary<string, bool> _segmentSeen = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Customer, bool Orders, bool Activities), bool> _leavesOut = [];

    internal SegmentView(SegmentService segments, FactsAccess? reader)
    {
        _segments = segments;
        Reader = reader;
    }

    public FactsAccess? Reader { get; }

    /// <summary>The service the view reads memberships from.</summary>
    public SegmentService Segments => _segments;

    /// <summary>
    /// Must each customer's orders/activities be checked before its membership is shown (the script reads their figures and
    /// the reader may not read every one of them)? False for an unknown segment and for the machine operator.
    /// </summary>
    public bool ChecksEachCustomer(string segment)
    {
        if (Reader is null || !_segments.TryFieldsOf(segment, out var fields))
        {
            return false;
        }

        return (CustomerFacts.NeedsOrders(fields) && !Reader.ReadsAll(EntityNames.Order))
            || (CustomerFacts.NeedsActivities(fields) && !Reader.ReadsAll(EntityNames.Activity));
    }

    /// <summary>Does the segment exist for the reader? False for an unknown segment.</summary>
    public bool Sees(string segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (!_segments.TryFieldsOf(segment, out var fields))
        {
            return false;
        }

        if (Reader is null)
        {
            return true;
        }

        if (!_segmentSeen.TryGetValue(segment, out var seen))
        {
            _segmentSeen[segment] = seen = !CustomerFacts.RevealsHidden(fields, Reader);
        }

        return seen;
    }

    /// <summary>
    /// May the reader see whether the customer is in the segment: the segment exists for them and its figures of this
    /// customer count only orders and activities they may read. The customer itself must be readable (checked by the caller).
    /// </summary>
    public async Task<bool> SeesMembershipAsync(string segment, string customerId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(customerId);
        if (!Sees(segment))
        {
            return false;
        }

        if (Reader is null)
        {
            return true;
        }

        if (!ChecksEachCustomer(segment))
        {
            return true;
        }

        _segments.TryFieldsOf(segment, out var fields);
        var key = (customerId, CustomerFacts.NeedsOrders(fields), CustomerFacts.NeedsActivities(fields));

        if (!_leavesOut.TryGetValue(key, out var leaves))
        {
            _leavesOut[key] = leaves = await CustomerFacts.LeavesOutAsync(_segments.Store, customerId, fields, Reader, cancellationToken);
        }

        return !leaves;
    }

    /// <summary>The segments the customer is in that the reader may see (names in catalog order).</summary>
    public async Task<IReadOnlyList<string>> MembershipsAsync(Customer customer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(customer);
        var shown = new List<string>();
        foreach (var name in _segments.SegmentNames)
        {
            if (await _segments.IsMemberAsync(name, customer.Id, cancellationToken) && await SeesMembershipAsync(name, customer.Id, cancellationToken))
            {
                shown.Add(name);
            }
        }

        return shown;
    }
}
