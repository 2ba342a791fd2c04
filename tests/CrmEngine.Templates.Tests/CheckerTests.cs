namespace CrmEngine.Templates.Tests;

/// <summary><c>crm templates check</c>'s engine: syntax, unknown variables and fields, missing files, trial renders.</summary>
public sealed class CheckerTests : IDisposable
{
    private readonly TempTemplates _folder = new();

    public void Dispose() => _folder.Dispose();

    private IReadOnlyList<string> Check()
    {
        using var templates = new MailTemplates(_folder.Directory);
        return TemplateChecker.Check(templates).Select(p => p.ToString()).ToList();
    }

    [Fact]
    public void The_shipped_templates_have_no_problems()
    {
        using var shipped = new TempTemplates(withShipped: true);
        using var templates = new MailTemplates(shipped.Directory);
        Assert.Empty(TemplateChecker.Check(templates));
    }

    [Fact]
    public void Unknown_variables_and_fields_are_reported_with_file_line_and_column()
    {
        _folder.WriteTemplate("t",
            "Hi {{ custmer.name }}",
            "<p>{{ customer.nmae }}</p>\n{{ for line in order.lines }}{{ line.descripton }}{{ line.description }}{{ end }}\n{{ customer.addresses[0].citty }}{{ customer.profile.interests.size }}",
            "{{ order.total.amount }} {{ string.upcasee 'x' }} {{ customer.custom.vip.text }} {{ customer.custom.vip.txt }}");
        var problems = Check();
        Assert.Contains("templates/t.subject.txt:1:7: unknown variable 'custmer' (the model has customer, contact, order, sender, unsubscribe_url, culture, extra; the trigger may add activity, campaign, case, links, reminder)", problems);
        Assert.Contains(problems, p => p.StartsWith("templates/t.html:1:16: 'customer' has no field 'nmae' (fields: ", StringComparison.Ordinal) && p.Contains("name,", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("templates/t.html:2:38: 'line' has no field 'descripton'", StringComparison.Ordinal) && p.Contains("description", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("templates/t.html:3:26: 'customer.addresses[]' has no field 'citty'", StringComparison.Ordinal));
        Assert.Contains("templates/t.txt:1:16: 'order.total' is a single value (a number); it has no field 'amount'", problems);
        Assert.Contains("templates/t.txt:1:36: 'string' has no function 'upcasee'", problems);
        Assert.Contains(problems, p => p.StartsWith("templates/t.txt:1:105: 'customer.custom.vip' has no field 'txt'", StringComparison.Ordinal));
        Assert.Equal(7, problems.Count);
    }

    [Fact]
    public void Assigned_variables_extras_loops_and_helpers_are_known()
    {
        _folder.WriteTemplate("t",
            "{{ campaign.subject }} {{ extra.case.number }}",
            "{{ title = 'x'; layout = 'l' }}{{ capture note }}n{{ end }}{{ func twice(v) }}{{ v }}{{ v }}{{ end }}{{ twice note }}{{ ticket = extra.case }}{{ ticket.anything }}" +
            "{{ for c in customer.contacts }}{{ c.name }}{{ for.index }}{{ end }}{{ money order.total order.currency }}{{ date order.ordered_at 'short' }}{{ customer.external_ids.erp }}",
            "{{ unsubscribe_url }}{{ sender.address }}{{ contact.birthday }}{{ customer.profile.birthday }}{{ word_wrap customer.name 40 }}");
        _folder.Write("_layouts/l.html", "{{ title }}{{ content }}");
        Assert.Empty(Check());
    }

    [Fact]
    public void Syntax_errors_and_missing_parts_are_reported()
    {
        _folder.WriteTemplate("broken", "ok", "line\n  {{ if customer.name }}", "ok");
        _folder.Write("half.html", "only html");
        _folder.Write("_partials/bad.txt", "{{ for }}");
        var problems = Check();
        Assert.Contains(problems, p => p.StartsWith("templates/broken.html:2:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("templates/_partials/bad.txt:1:", StringComparison.Ordinal));
        Assert.Contains("templates/half.subject.txt: missing: template 'half' needs half.subject.txt, half.html and half.txt", problems);
        Assert.Contains("templates/half.txt: missing: template 'half' needs half.subject.txt, half.html and half.txt", problems);
    }

    [Fact]
    public void Runtime_mistakes_show_in_the_trial_render()
    {
        _folder.WriteTemplate("t", "s", "<p>\n  {{ money 'not a number' 'EUR' }}</p>", "t");
        var problem = Assert.Single(Check());
        Assert.StartsWith("templates/t.html:2:", problem, StringComparison.Ordinal);
        Assert.Contains("'not a number' is not a number", problem, StringComparison.Ordinal);
        Assert.Contains("trial render", problem, StringComparison.Ordinal);
    }
}
