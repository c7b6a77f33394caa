import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ScriptValidationError } from '../errors.ts';
import { makeEngine, script, type TestEngine } from '../test-support.ts';
import { DEFAULT_MAX_SCRIPT_BYTES, parseScript, scriptTitle, titleFromComments } from './validate.ts';

function rejection(code: string, fallbackTitle = 'fallback.js', maxBytes?: number): ScriptValidationError {
  try {
    parseScript(code, { fallbackTitle, ...(maxBytes !== undefined ? { maxBytes } : {}) });
  } catch (err) {
    assert.ok(err instanceof ScriptValidationError, `expected ScriptValidationError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(code)} to be rejected`);
}

describe('parseScript: ES5 only', () => {
  it('accepts ordinary ES5 and returns the AST and the code', () => {
    const code = '// Counter\nvar n = 0;\nfunction onItemCaptured(data) { n++; if (data.request) { console.log(data.request.method); } }\n';
    const p = parseScript(code, { fallbackTitle: 'x.js' });
    assert.equal(p.title, 'Counter');
    assert.equal(p.code, code);
    assert.equal(p.ast.type, 'Program');
    assert.equal(p.ast.body.length, 2);
  });

  it('accepts ES5 features that look modern: getters, reserved words as property names, trailing commas in object literals', () => {
    const code = 'var o = { get x() { return 1; }, "default": 2, }; var y = o.default + o["class"]; function f() { "use strict"; return this; }';
    assert.doesNotThrow(() => parseScript(code, { fallbackTitle: 'x.js' }));
  });

  const es6: [string, string, number, number][] = [
    ['let', '// Let script\nlet x = 1;', 2, 5],
    ['const', '// Const script\nvar a = 1;\nconst b = 2;', 3, 1],
    ['arrow function', '// Arrow script\nvar f = (a) => a;', 2, 14],
    ['class', '/* Class script */\nclass A {}', 2, 1],
    ['template literal', '// Template script\nvar x = 1;\n  var y = function () { return `a${x}`; };', 3, 32],
    ['shorthand property', '// Short\nvar a = 1, b = 2;\nvar o = {a, b};', 3, 11],
    ['for..of', '// ForOf\nfor (var x of [1]) {}', 2, 12],
  ];
  for (const [what, code, line, column] of es6) {
    it(`rejects ${what} with the title, line and column, and says ES5`, () => {
      const e = rejection(code);
      const title = code.split('\n')[0].replace(/^\/\/\s*|^\/\*\s*|\s*\*\/$/g, '');
      assert.equal(e.title, title);
      assert.equal(e.line, line);
      assert.equal(e.column, column);
      assert.match(e.message, /not valid ES5/);
      assert.match(e.message, /ES2015\+ syntax/);
      assert.ok(e.message.startsWith(`${title}:${line}:${column}: `), e.message);
    });
  }

  it('rejects a plain syntax error without blaming ES2015', () => {
    const e = rejection('// Broken\nvar x = 1;\nfunction (', 'broken.js');
    assert.equal(e.title, 'Broken');
    assert.equal(e.line, 3);
    assert.equal(e.column, 10);
    assert.match(e.message, /not valid ES5/);
    assert.doesNotMatch(e.message, /ES2015/);
  });

  it('rejects a top-level return (scripts are programs, not function bodies)', () => {
    const e = rejection('// Ret\nreturn 1;');
    assert.equal(e.line, 2);
  });

  it('rejects code that is not a string', () => {
    const e = rejection(42 as unknown as string, 'num.js');
    assert.equal(e.title, 'num.js');
    assert.match(e.message, /must be a string/);
  });

  it('rejects scripts over the size limit, still naming them by their comment', () => {
    const code = `// Big one\nvar s = "${'x'.repeat(200)}";`;
    const e = rejection(code, 'big.js', 100);
    assert.equal(e.title, 'Big one');
    assert.match(e.message, /over the 100-byte limit/);
    assert.doesNotThrow(() => parseScript(code, { fallbackTitle: 'big.js', maxBytes: code.length }));
  });

  it('has a default size limit of 1 MiB', () => {
    assert.equal(DEFAULT_MAX_SCRIPT_BYTES, 1024 * 1024);
    const e = rejection(`var s = "${'y'.repeat(DEFAULT_MAX_SCRIPT_BYTES)}";`);
    assert.match(e.message, /limit/);
  });
});

describe('script titles', () => {
  it('is the first line comment, trimmed', () => {
    assert.equal(parseScript('//   Slow requests   \nvar a;', { fallbackTitle: 'f.js' }).title, 'Slow requests');
  });

  it('is the first non-empty line of a block comment, without leading stars', () => {
    const code = '/**\n *\n * Error report\n * second line\n */\nvar a;';
    assert.equal(parseScript(code, { fallbackTitle: 'f.js' }).title, 'Error report');
  });

  it('uses the first comment even when code comes before it', () => {
    assert.equal(parseScript('var a = 1; // tail comment\n// second', { fallbackTitle: 'f.js' }).title, 'tail comment');
  });

  it('skips empty comments', () => {
    assert.equal(parseScript('//\n/* */\n// Real title\nvar a;', { fallbackTitle: 'f.js' }).title, 'Real title');
  });

  it('falls back when there is no comment', () => {
    assert.equal(parseScript('var a = 1;', { fallbackTitle: 'my-script.js' }).title, 'my-script.js');
  });

  it('is capped at 200 characters', () => {
    const t = parseScript(`// ${'t'.repeat(500)}\nvar a;`, { fallbackTitle: 'f.js' }).title;
    assert.equal(t, 't'.repeat(200));
  });

  it('scriptTitle reads the comment of code that is not ES5, or is broken after the comment', () => {
    assert.equal(scriptTitle('// Modern\nlet x = () => 1;', 'f.js'), 'Modern');
    assert.equal(scriptTitle('// Half\nvar x = (;', 'f.js'), 'Half');
    assert.equal(scriptTitle('var x = (;', 'f.js'), 'f.js');
  });

  it('titleFromComments handles CRLF block comments', () => {
    assert.equal(titleFromComments([{ type: 'Block', value: '\r\n * Windows title\r\n', start: 0, end: 1 }], 'f'), 'Windows title');
  });
});

describe('validation through the engine', () => {
  let t: TestEngine;
  before(async () => { t = await makeEngine(); });
  after(() => t.engine.close());

  it('rejects an ES6 script with title, line and column while the rest of the set loads and runs', () => {
    t.out.clear();
    const report = t.engine.load({
      scripts: [
        script(0, 'Good first', 'var n = 0; function onItemCaptured(d) { n++; console.log("first", n); }'),
        { index: 1, code: '// Modern script\nvar a = 1;\nvar f = (x) => x;\nfunction onItemCaptured(d) { console.log("never"); }' },
        script(2, 'Good second', 'function onItemCaptured(d) { console.log("second", d.v); }'),
      ],
    });
    assert.deepEqual(report.loaded.map((l) => l.title), ['Good first', 'Good second']);
    assert.equal(report.rejected.length, 1);
    const r = report.rejected[0];
    assert.equal(r.index, 1);
    assert.equal(r.title, 'Modern script');
    assert.equal(r.line, 3);
    assert.equal(r.column, 14);
    assert.match(r.message, /^not valid ES5/);
    // The rejection is also reported on the console, with its place.
    const err = t.out.errors('Modern script');
    assert.equal(err.length, 1);
    assert.equal(err[0].hook, 'load');
    assert.equal(err[0].line, 3);
    assert.equal(err[0].column, 14);
    assert.equal(err[0].scriptIndex, 1);
    assert.match(err[0].text, /^Modern script:3:14: not valid ES5/);

    t.engine.dispatchItems([{ v: 7 }]);
    assert.deepEqual(t.out.logs(), ['first 1', 'second 7']);
    assert.deepEqual(t.engine.scripts().map((s) => s.index), [0, 2]);
  });

  it('titles a script: explicit title, else first comment, else fileName, else script-<index>', () => {
    const report = t.engine.load({
      scripts: [
        { index: 3, code: '// Comment title\nvar a;', title: 'Explicit title' },
        { index: 4, code: '/* Block title */ var a;', fileName: 'ignored.js' },
        { index: 5, code: 'var a;', fileName: 'from-file.js' },
        { index: 6, code: 'var a;' },
        { index: 7, code: '// Comment used\nvar a;', title: '   ' },
      ],
    });
    assert.deepEqual(report.loaded.map((l) => [l.index, l.title]), [
      [3, 'Explicit title'], [4, 'Block title'], [5, 'from-file.js'], [6, 'script-6'], [7, 'Comment used'],
    ]);
  });

  it('titles rejected scripts the same way', () => {
    const report = t.engine.load({
      scripts: [
        { index: 8, code: 'let a;', fileName: 'bad-file.js' },
        { index: 9, code: 'let a;' },
        { index: 10, code: '// Bad commented\nlet a;', fileName: 'x.js' },
      ],
    });
    assert.deepEqual(report.rejected.map((r) => r.title), ['bad-file.js', 'script-9', 'Bad commented']);
  });

  it('enforces maxScriptBytes', async () => {
    const small = await makeEngine({ limits: { maxScriptBytes: 64 } });
    try {
      const report = small.engine.load({
        scripts: [
          script(0, 'Tiny', 'var a = 1;'),
          script(1, 'Huge', `var s = "${'z'.repeat(100)}";`),
        ],
      });
      assert.deepEqual(report.loaded.map((l) => l.title), ['Tiny']);
      assert.equal(report.rejected.length, 1);
      assert.equal(report.rejected[0].title, 'Huge');
      assert.match(report.rejected[0].message, /over the 64-byte limit/);
    } finally {
      small.engine.close();
    }
  });

  it('skips inactive scripts without rejecting them', () => {
    const report = t.engine.load({
      scripts: [
        script(0, 'Active', 'var a;'),
        { ...script(1, 'Inactive but broken', 'let a;'), active: false },
      ],
    });
    assert.deepEqual(report.loaded.map((l) => l.title), ['Active']);
    assert.deepEqual(report.rejected, []);
  });

  it('reports a runtime error in the top level as a rejection with its line, and keeps the others', () => {
    t.out.clear();
    const report = t.engine.load({
      scripts: [
        script(0, 'Throws at load', 'var a = 1;\nnull.x;\nfunction onItemCaptured(d) { console.log("bad"); }'),
        script(1, 'Fine', 'function onItemCaptured(d) { console.log("fine"); }'),
      ],
    });
    assert.deepEqual(report.loaded.map((l) => l.title), ['Fine']);
    assert.equal(report.rejected.length, 1);
    assert.equal(report.rejected[0].title, 'Throws at load');
    assert.equal(report.rejected[0].line, 3);
    assert.match(report.rejected[0].message, /TypeError/);
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs(), ['fine']);
  });
});
