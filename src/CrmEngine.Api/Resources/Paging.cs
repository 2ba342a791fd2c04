using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace CrmEngine.Api.Resources;

/// <summary>One page of a list: the items and the link to the next page (null on the last page).</summary>
internal sealed record ResourcePage<T>(IReadOnlyList<T> Items, string? Next);

/// <summary>A list request: page size, cursor, and at most one indexed filter.</summary>
internal sealed record PageRequest(int Limit, string? After, string? FilterField, string? FilterValue);

/// <summary>
/// Cursor paging. The cursor is the sort key of the last item of a page (for id order, its id); the
/// next page starts strictly after it. Records never move in id order, so pages neither skip nor
/// repeat records that existed when paging began, whatever is written meanwhile.
/// </summary>
internal static class Paging
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 500;
    public const string LimitParameter = "limit";
    public const string AfterParameter = "after";

    /// <summary>
    /// Reads limit, after and the filters (<paramref name="filters"/>: query names; at most one may be used).
    /// Any other parameter than those and <paramref name="extra"/> is refused, naming it.
    /// </summary>
    public static bool TryRead(HttpRequest request, IReadOnlyCollection<string> filters, IReadOnlyCollection<string> extra,
        out PageRequest page, out IResult? problem)
    {
        page = new PageRequest(DefaultLimit, null, null, null);
        problem = null;
        var limit = DefaultLimit;
        string? after = null, field = null, value = null;
        foreach (var (key, values) in request.Query)
        {
            if (values.Count != 1)
            {
                problem = ResourceProblems.BadRequest(key, "must be given once");
                return false;
            }

            var text = values[0] ?? "";
            if (key.Equals(LimitParameter, StringComparison.OrdinalIgnoreCase))
            {
                if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1 || limit > MaxLimit)
                {
                    problem = ResourceProblems.BadRequest(LimitParameter, $"'{text}' is not a page size: use a whole number from 1 to {MaxLimit}");
                    return false;
                }
            }
            else if (key.Equals(AfterParameter, StringComparison.OrdinalIgnoreCase))
            {
                if (text.Length == 0)
                {
                    problem = ResourceProblems.BadRequest(AfterParameter, "is empty: use the cursor from the previous page's next link");
                    return false;
                }

                after = text;
            }
            else if (filters.FirstOrDefault(f => f.Equals(key, StringComparison.OrdinalIgnoreCase)) is { } filter)
            {
                if (field is not null)
                {
                    problem = ResourceProblems.BadRequest(key, $"only one filter can be used at a time (already filtering by {field})");
                    return false;
                }

                if (string.IsNullOrWhiteSpace(text))
                {
                    problem = ResourceProblems.BadRequest(filter, "is empty");
                    return false;
                }

                field = filter;
                value = text;
            }
            else if (!extra.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                var known = filters.Concat(extra).Append(LimitParameter).Append(AfterParameter);
                problem = ResourceProblems.BadRequest(key, "is not a parameter of this list; use " + string.Join(", ", known));
                return false;
            }
        }

        page = new PageRequest(limit, after, field, value);
        return true;
    }

    /// <summary>
    /// The answer for a page fetched with <c>limit + 1</c> items: the extra item only says that a next
    /// page exists. Sets a <c>Link: &lt;…&gt;; rel="next"</c> header beside the <c>next</c> member.
    /// </summary>
    public static IResult Respond<TItem, TOut>(HttpContext context, IReadOnlyList<TItem> fetched, int limit,
        Func<TItem, string> cursorOf, Func<TItem, TOut> project)
    {
        var items = fetched.Take(limit).ToList();
        string? next = null;
        if (fetched.Count > limit && items.Count > 0)
        {
            next = NextLink(context.Request, cursorOf(items[^1]));
            context.Response.Headers.Append("Link", $"<{next}>; rel=\"next\"");
        }

        return ResourceJson.Instance.Ok(new ResourcePage<TOut>(items.Select(project).ToList(), next));
    }

    /// <summary>The request's own path and query, with <c>after</c> set to <paramref name="cursor"/>.</summary>
    public static string NextLink(HttpRequest request, string cursor)
    {
        var query = request.Query
            .Where(p => !p.Key.Equals(AfterParameter, StringComparison.OrdinalIgnoreCase))
            .Select(p => new KeyValuePair<string, string?>(p.Key, p.Value.ToString()))
            .Append(new KeyValuePair<string, string?>(AfterParameter, cursor));
        return request.PathBase.Add(request.Path).ToUriComponent() + QueryString.Create(query).ToUriComponent();
    }
}
