using CrmEngine.Abstractions.Model;

namespace CrmEngine.Templates.Tests;

/// <summary>Hostile templates: loops, recursion, huge output, reflection, escaping the folder, changing the model.</summary>
public sealed class SafetyTests : IDisposable
{
    private readonly TempTemplates _folder = new();

    public void Dispose() => _folder.Dispose();

    private MailTemplates Templates(TemplatesOptions? options = null) => new(_folder.Directory, options);

    /// <summary>Renders an HTML body (subject and text are trivial) and returns the exception or the HTML.</summary>
    private (TemplateRenderException? Error, string? Html) RenderHtml(string html, TemplateModel? model = null, TemplatesOptions? options = null)
    {
        _folder.WriteTemplate("t", "subject", html, "text");
        using var templates = Templates(options);
        try
        {
            return (null, templates.Render("t", model ?? Samples.Accented()).Html);
        }
        catch (TemplateRenderException ex)
        {
            return (ex, null);
        }
    }

    [Fact]
    public void An_endless_loop_stops_at_the_loop_limit_naming_file_line_and_column()
    {
        var (error, _) = RenderHtml("<p>x</p>\n{{ while true }}x{{ end }}");
        Assert.NotNull(error);
        Assert.Equal("templates/t.html", error!.File);
        Assert.Equal(2, error.Line);
        Assert.True(error.Column > 0);
        Assert.Contains("templates/t.html:2:", error.Message, StringComparison.Ordinal);
        Assert.Contains("limit", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_render_over_its_time_budget_is_stopped()
    {
        // Loop limit out of the way: only the time budget can stop this (each step builds a long string).
        var options = new TemplatesOptions { LoopLimit = 10_000_000, Timeout = TimeSpan.FromMilliseconds(200) };
        var (error, _) = RenderHtml("{{ s = '' | string.pad_left 5000 }}{{ for i in 1..10000000 }}{{ t = s + i }}{{ end }}", options: options);
        Assert.NotNull(error);
        Assert.Contains("time budget", error!.Message, StringComparison.Ordinal);
        Assert.Equal("templates/t.html", error.File);
    }

    [Fact]
    public void The_callers_cancellation_is_reported_as_cancellation()
    {
        _folder.WriteTemplate("t", "s", "{{ while true }}{{ end }}", "x");
        using var templates = Templates(new TemplatesOptions { LoopLimit = 10_000_000, Timeout = TimeSpan.FromSeconds(30) });
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.ThrowsAny<OperationCanceledException>(() => templates.Render("t", Samples.Sparse(), cancel.Token));
    }

    [Fact]
    public void Deep_recursion_stops_at_the_recursion_limit()
    {
        var (error, _) = RenderHtml("{{ func down(n)\n ret down(n + 1)\nend }}{{ down 1 }}");
        Assert.NotNull(error);
        Assert.Contains("recursive", error!.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Huge_output_stops_at_the_output_limit()
    {
        var options = new TemplatesOptions { MaxOutputChars = 100_000, LoopLimit = 1_000_000 };
        var (error, _) = RenderHtml("{{ for i in 1..1000000 }}0123456789{{ end }}", options: options);
        Assert.NotNull(error);
        Assert.Contains("OutputLimit", error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_string_that_doubles_itself_stops_at_the_string_limit()
    {
        var (error, _) = RenderHtml("{{ s = 'x'\nfor i in 1..64\n s = s + s\nend }}{{ s | string.size }}", options: new TemplatesOptions { MaxStringChars = 100_000 });
        Assert.NotNull(error);
        Assert.Contains("LimitToString", error!.Message, StringComparison.Ordinal);
        var (padError, _) = RenderHtml("{{ '' | string.pad_left 2000000000 }}");
        Assert.NotNull(padError);
    }

    [Fact]
    public void Templates_see_data_properties_only_never_types_methods_or_services()
    {
        var extra = new Dictionary<string, object?> { ["probe"] = new Probe(), ["anonymous"] = new { Number = "CS-1" } };
        var (error, html) = RenderHtml(
            "[{{ customer.name }}][{{ customer.get_type }}][{{ customer.GetType }}][{{ probe.runtime_type }}][{{ probe.runtime_type.assembly }}]" +
            "[{{ probe.services }}][{{ probe.callback }}][{{ probe.secret }}][{{ probe.visible }}][{{ probe.to_string }}][{{ customer.name.length }}][{{ anonymous.number }}]",
            Samples.Accented(extra));
        Assert.Null(error);
        Assert.Equal("[Müller &amp; Söhne GmbH][][][][][][][][shown][][][CS-1]", html);
    }

    [Fact]
    public void Code_as_text_cannot_be_evaluated()
    {
        var (error, _) = RenderHtml("{{ object.eval 'customer.name' }}");
        Assert.NotNull(error);
        var (templateError, _) = RenderHtml("{{ object.eval_template '{{ customer.name }}' }}");
        Assert.NotNull(templateError);
    }

    [Fact]
    public void Templates_cannot_change_the_model_or_the_shared_functions()
    {
        var model = Samples.Accented();
        var (error, html) = RenderHtml("{{ customer.name = 'changed' }}{{ customer.emails[0] = 'x' }}{{ customer.name }}", model);
        Assert.Equal("Müller & Söhne GmbH", model.Customer!.Name);
        Assert.True(error is not null || html == "Müller &amp; Söhne GmbH", html);

        var (builtinError, _) = RenderHtml("{{ string.upcase = 'broken' }}");
        Assert.NotNull(builtinError);
        // The shared functions still work afterwards (a new render, the same built-ins).
        var (after, upper) = RenderHtml("{{ 'ok' | string.upcase }}");
        Assert.Null(after);
        Assert.Equal("OK", upper);
    }

    [Fact]
    public void Includes_and_layouts_stay_inside_the_templates_folder()
    {
        var outside = Path.Combine(_folder.Root, "secret.html");
        File.WriteAllText(outside, "SECRET");
        _folder.Write("_partials/ok.html", "fine");

        foreach (var reference in new[] { "../../secret.html", "../secret", "/etc/passwd", outside, "..\\secret", "a/../../secret" })
        {
            var (error, _) = RenderHtml($"{{{{ include \"{reference.Replace("\\", "\\\\", StringComparison.Ordinal)}\" }}}}");
            Assert.NotNull(error);
            Assert.DoesNotContain("SECRET", error!.Message, StringComparison.Ordinal);
            Assert.Contains("templates/t.html:1:", error.Message, StringComparison.Ordinal);
        }

        var (layoutError, _) = RenderHtml("{{ layout = '../../secret' }}body");
        Assert.NotNull(layoutError);
        Assert.Contains("layout", layoutError!.Message, StringComparison.Ordinal);

        // A symbolic link inside the folder that points outside it is refused too.
        File.CreateSymbolicLink(Path.Combine(_folder.Directory, "_partials", "link.html"), outside);
        var (linkError, _) = RenderHtml("{{ include 'link' }}");
        Assert.NotNull(linkError);
        Assert.Contains("outside the templates folder", linkError!.Message, StringComparison.Ordinal);
        Directory.CreateSymbolicLink(Path.Combine(_folder.Directory, "_partials", "elsewhere"), _folder.Root);
        var (folderLinkError, _) = RenderHtml("{{ include 'elsewhere/secret' }}");
        Assert.NotNull(folderLinkError);

        var (fine, html) = RenderHtml("{{ include 'ok' }}");
        Assert.Null(fine);
        Assert.Equal("fine", html);
    }

    [Fact]
    public void A_partial_including_itself_stops_at_the_include_depth()
    {
        _folder.Write("_partials/loop.html", "x{{ include 'loop' }}");
        var (error, _) = RenderHtml("{{ include 'loop' }}");
        Assert.NotNull(error);
        Assert.Contains("deeper than", error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Raw_writes_html_unescaped_and_partials_are_not_escaped_twice()
    {
        _folder.Write("_partials/box.html", "<div>{{ customer.name }}</div>");
        var (error, html) = RenderHtml("{{ raw '<hr>' }}{{ '<hr>' }}{{ include 'box' }}", Samples.Hostile());
        Assert.Null(error);
        Assert.Equal("<hr>&lt;hr&gt;<div>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</div>", html);
    }

    [Fact]
    public void A_subject_is_one_line_even_when_data_holds_line_breaks()
    {
        _folder.WriteTemplate("t", "Hello {{ customer.name }}\n", "h", "t");
        using var templates = Templates();
        var model = Samples.Sparse();
        model.Customer!.Name = "Ana\r\nBcc: victim@example.com";
        Assert.Equal("Hello Ana Bcc: victim@example.com", templates.Render("t", model).Subject);
    }

    [Fact]
    public void Bad_names_and_missing_files_are_refused_clearly()
    {
        using var templates = Templates();
        Assert.Contains("not a template name", Assert.Throws<TemplateRenderException>(() => templates.Render("../x", Samples.Sparse())).Message, StringComparison.Ordinal);
        Assert.False(templates.Exists("../x"));
        Assert.False(templates.Exists("nothing"));
        var missing = Assert.Throws<TemplateRenderException>(() => templates.Render("nothing", Samples.Sparse()));
        Assert.Contains("templates/nothing.subject.txt does not exist", missing.Message, StringComparison.Ordinal);
        var culture = Assert.Throws<TemplateRenderException>(() => templates.Render("nothing", new TemplateModel { Sender = Samples.Sender, Culture = "xx-nowhere" }));
        Assert.Contains("culture 'xx-nowhere'", culture.Message, StringComparison.Ordinal);
    }

    public sealed class Probe
    {
        public Type RuntimeType => typeof(Probe);

        public IServiceProvider? Services => null;

        public Func<string> Callback => () => "called";

        public string Visible => "shown";

#pragma warning disable CA1822 // a method on purpose: templates must not call it
        public string Secret() => "secret";
#pragma warning restore CA1822
    }
}
